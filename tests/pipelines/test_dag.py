"""Building the graph by calling steps, and drawing it."""

from __future__ import annotations

import pytest

from loopline.errors import InvalidInput
from loopline.pipelines import pipeline, step
from loopline.pipelines.dag import build, render
from loopline.pipelines.steps import StepOutput
from tests.pipelines import example_pipelines as ex


class TestBuild:
    def test_calling_steps_records_nodes_in_topological_order(self):
        """Nodes appear in call order, which is a topological order, with their upstream."""
        dag = build(ex.train_pipeline, {"n": 5})
        assert dag.order() == ["load", "split", "fit", "evaluate", "as_array"]
        assert dag.nodes["evaluate"].upstream == ["fit", "split"]
        assert dag.params == {"n": 5, "fraction": 0.5}

    def test_a_tuple_return_annotation_gives_one_placeholder_per_output(self):
        seen = {}

        @pipeline
        def p():
            seen["outputs"] = ex.split(ex.load(3))

        build(p, {})
        assert seen["outputs"] == (StepOutput("split", "output_0"), StepOutput("split", "output_1"))

    def test_fan_out_and_fan_in_through_a_list(self):
        """One output feeds three calls of the same step (ids square, square_2, square_3);
        a list of their outputs feeds one step."""
        dag = build(ex.fan, {"width": 3})
        assert dag.order() == ["number", "square", "square_2", "square_3", "total"]
        assert dag.nodes["total"].upstream == ["square", "square_2", "square_3"]
        assert dag.downstream("number") == ["square", "square_2", "square_3", "total"]
        assert dag.downstream("square_2") == ["total"]

    def test_outside_a_pipeline_a_step_is_its_function(self):
        assert ex.square(4) == 16

    def test_unknown_pipeline_parameters_are_refused_naming_the_known_ones(self):
        with pytest.raises(InvalidInput, match="it takes: n, fraction"):
            build(ex.train_pipeline, {"rows": 3})

    def test_branching_on_a_placeholder_is_a_clear_error(self):
        @pipeline
        def p():
            if ex.number(1):
                pass

        with pytest.raises(InvalidInput, match="branch inside a step"):
            build(p, {})

    def test_step_options_are_kept(self):
        @step(retries=3, timeout=2, cpus=2, memory=1024, outputs=["a", "b"], cache=False)
        def two(x: int):
            return x, x

        assert (two.retries, two.timeout, two.cache) == (3, 2, False)
        assert (two.resources.cpus, two.resources.memory) == (2, 1024)
        assert two.outputs == ["a", "b"] and two.tuple_output


class TestRender:
    GRAPH = build(ex.fan, {"width": 2}).to_dict()

    def test_text_lists_each_node_with_its_inputs(self):
        assert render(self.GRAPH, "text", {"total": "failed"}) == (
            "number\nsquare  <- number.output\nsquare_2  <- number.output\n"
            "total [failed]  <- square.output, square_2.output\n"
        )

    def test_mermaid_is_a_flowchart_with_labelled_edges(self):
        text = render(self.GRAPH, "mermaid")
        assert text.splitlines()[0] == "flowchart TD"
        assert '    n3["total"]' in text
        assert "    n1 -->|output| n3" in text

    def test_dot_is_a_digraph(self):
        text = render(self.GRAPH, "dot")
        assert text.startswith("digraph pipeline {") and text.rstrip().endswith("}")
        assert 'n0 -> n1 [label="output -> value"];' in text

    def test_an_unknown_format_is_refused(self):
        with pytest.raises(InvalidInput, match="text, mermaid, dot"):
            render(self.GRAPH, "svg")
