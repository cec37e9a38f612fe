"""Running pipelines on the local executor: outputs, tracking, lineage, caching, retries,
timeouts, failure handling and resume."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
import uuid
from pathlib import Path

import pandas as pd

import loopline as ll
from loopline.entities import Ref
from loopline.pipelines import PipelineRun, pipeline, resume, run, run_target, step
from loopline.pipelines.executors import shared_local_executor
from tests.pipelines import example_pipelines as ex


def _children(ws, result: PipelineRun) -> dict[str, object]:
    return {s.name: ws.tracking.get_run(s.run_id) for s in result.steps.values()}


class TestOutputsAndTracking:
    def test_outputs_are_stored_as_parquet_json_model_and_npy_with_stable_digests(self, ws):
        """Every format round-trips; running again without the cache gives the same digests."""
        first = run(ex.train_pipeline, {"n": 20})
        assert first.status == "FINISHED"
        formats = {
            (name, o.name): (o.format, o.path)
            for name, s in first.steps.items()
            for o in s.outputs.values()
        }
        assert formats == {
            ("load", "output"): ("parquet", "outputs/output.parquet"),
            ("split", "output_0"): ("parquet", "outputs/output_0.parquet"),
            ("split", "output_1"): ("parquet", "outputs/output_1.parquet"),
            ("fit", "output"): ("mlmodel", "outputs/output"),
            ("evaluate", "output"): ("json", "outputs/output.json"),
            ("as_array", "output"): ("npy", "outputs/output.npy"),
        }
        assert first.output("evaluate")["rows"] == 10
        assert first.output("evaluate")["mae"] < 1e-9
        pd.testing.assert_frame_equal(
            first.output("split", "output_1"), ex.load(20).iloc[10:].reset_index(drop=True)
        )
        assert first.output("as_array").shape == (20, 2)
        assert abs(first.output("fit").predict(pd.DataFrame({"x": [100]}))[0] - 201) < 1e-9
        second = run(ex.train_pipeline, {"n": 20}, cache=False)
        assert second.cached_steps == []

        def digests(result: PipelineRun) -> dict[tuple[str, str], str]:
            return {
                (n, o.name): o.digest for n, s in result.steps.items() for o in s.outputs.values()
            }

        assert digests(second) == digests(first)

    def test_each_step_is_a_child_run_with_params_tags_artifacts_and_lineage(self, ws):
        result = run(ex.train_pipeline, {"n": 12, "fraction": 0.25})
        parent = ws.tracking.get_run(result.run_id)
        assert parent.tags["loopline.pipeline"] == f"{ex.__name__}:train_pipeline"
        assert parent.params == {"n": "12", "fraction": "0.25"}
        children = _children(ws, result)
        assert {r.info.parent_run_id for r in children.values()} == {result.run_id}
        split = children["split"]
        assert split.info.run_name == "split"
        assert split.params == {"fraction": "0.25"}
        assert split.tags["loopline.step"] == "split"
        assert split.tags["loopline.cached"] == "false"
        assert len(split.tags["loopline.cache_key"]) == 64
        paths = [r.path for r in ws.tracking.artifact_files(split.run_id)]
        assert paths == ["outputs/output_0.parquet", "outputs/output_1.parquet"]
        load_out = Ref("artifact", f"{children['load'].run_id}/outputs/output.parquet")
        edges = {
            (str(e.source), str(e.target), e.relation)
            for e in ws.lineage.upstream(Ref("run", split.run_id), max_depth=1)
        }
        assert (str(load_out), f"run:{split.run_id}", "input") in edges
        assert (f"run:{result.run_id}", f"run:{split.run_id}", "parent_of") in edges
        produced = {str(e.target) for e in ws.lineage.downstream(Ref("run", split.run_id), 1)}
        assert f"artifact:{split.run_id}/outputs/output_1.parquet" in produced

    def test_a_dataset_version_input_is_resolved_and_recorded_as_read(self, ws):
        ws.data.log_table(pd.DataFrame({"a": [1, 2, 3]}), "points")
        result = run(ex.dataset_pipeline, {"data": "points@1"})
        assert result.status == "FINISHED", result.error
        assert result.output("count_rows") == 3
        step_run = result.steps["count_rows"].run_id
        sources = {str(e.source) for e in ws.lineage.upstream(Ref("run", step_run), 1)}
        assert "dataset_version:points@1" in sources
        again = run(ex.dataset_pipeline, {"data": "points@1"})
        assert again.cached_steps == ["count_rows"]

    def test_an_unknown_dataset_version_fails_that_step_not_the_runner(self, ws):
        result = run(ex.dataset_pipeline, {"data": "nosuch@4"})
        assert result.status == "FAILED"
        assert result.failed_step == "count_rows"
        assert result.error.startswith("NotFound: ")


class TestCaching:
    def test_a_second_run_is_fully_cached_and_says_so(self, ws):
        first = run(ex.fan, {"width": 3})
        events: list[tuple[str, str]] = []
        second = run(ex.fan, {"width": 3}, on_event=lambda kind, s: events.append((kind, s.name)))
        assert second.status == "FINISHED"
        assert second.cached_steps == ["number", "square", "square_2", "square_3", "total"]
        assert events == [("cached", n) for n in second.cached_steps]
        assert second.output("total") == 27
        tags = ws.tracking.get_run(second.steps["total"].run_id).tags
        assert tags["loopline.cached"] == "true"
        assert tags["loopline.cached_from"] == first.steps["total"].run_id
        assert [r.path for r in ws.tracking.artifact_files(second.steps["total"].run_id)] == [
            "outputs/output.json"
        ]

    def test_a_parameter_change_invalidates_the_steps_it_reaches(self, ws):
        run(ex.train_pipeline, {"n": 20, "fraction": 0.5})
        changed = run(ex.train_pipeline, {"n": 20, "fraction": 0.75})
        assert changed.cached_steps == ["load", "as_array"]
        assert changed.executed_steps == ["split", "fit", "evaluate"]

    def test_a_step_with_cache_false_always_runs(self, ws, tmp_path):
        counter = str(tmp_path / "stamps.txt")
        run(ex.uncached_pipeline, {"counter": counter})
        second = run(ex.uncached_pipeline, {"counter": counter})
        assert Path(counter).read_text() == "2"
        assert second.executed_steps == ["stamp", "square"]  # a new stamp, a new square

    def test_cache_false_runs_everything(self, ws):
        run(ex.fan, {"width": 2})
        again = run(ex.fan, {"width": 2}, cache=False)
        assert again.cached_steps == []
        assert len(again.executed_steps) == 4

    def test_changing_one_steps_code_reruns_it_and_downstream_not_upstream(self, ws, tmp_path):
        source = (
            "from loopline.pipelines import pipeline, step\n\n"
            "@step\ndef a(x: int) -> int:\n    return x + 1\n\n"
            "@step\ndef b(x: int) -> int:\n    return x * 2\n\n"
            "@step\ndef c(x: int) -> int:\n    return x - 3\n\n"
            "@step\ndef side(x: int) -> int:\n    return -x\n\n"
            "@pipeline\ndef flow(x: int = 1):\n    first = a(x)\n    c(b(first))\n    side(first)\n"
        )
        name = f"flow_{uuid.uuid4().hex[:8]}"
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        sys.path.insert(0, str(tmp_path))
        try:
            module = importlib.import_module(name)
            first = run(module.flow, {"x": 1})
            assert first.output("c") == 1
            path.write_text(source.replace("return x * 2", "return x * 20"))
            Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
            module = importlib.reload(module)
            second = run(module.flow, {"x": 1})
        finally:
            sys.path.remove(str(tmp_path))
        assert second.executed_steps == ["b", "c"]
        assert second.cached_steps == ["a", "side"]
        assert second.output("c") == 37  # the workers ran the edited code, not a stale import


class TestExecution:
    def test_a_step_that_fails_twice_passes_with_retries_2(self, ws, tmp_path):
        counter = tmp_path / "attempts.txt"
        events: list[str] = []
        result = run(
            ex.flaky_pipeline,
            {"counter": str(counter)},
            on_event=lambda kind, s: events.append(kind),
        )
        assert result.status == "FINISHED"
        assert counter.read_text() == "3"
        assert events == ["started", "retrying", "retrying", "finished"]
        assert result.steps["flaky"].attempts == 3
        assert result.output("flaky") == "ok after 3"
        assert ws.tracking.get_run(result.steps["flaky"].run_id).tags["loopline.attempts"] == "3"

    def test_a_step_over_its_timeout_is_stopped_and_reported(self, ws):
        started = time.monotonic()
        result = run(ex.timeout_pipeline, {"seconds": 60.0})
        assert time.monotonic() - started < 20
        assert result.status == "FAILED"
        assert result.failed_step == "sleepy"
        assert "StepTimeout" in result.error and "timeout of 0.5s" in result.error
        assert "'sleepy'" in result.error
        assert result.steps["after"].state == "skipped"
        children = _children(ws, result)
        assert str(children["sleepy"].info.status) == "FAILED"
        assert str(children["after"].info.status) == "KILLED"
        assert children["after"].tags["loopline.skipped"] == "upstream step 'sleepy' failed"
        parent = ws.tracking.get_run(result.run_id)
        assert str(parent.info.status) == "FAILED"
        assert parent.tags["loopline.pipeline.failed_step"] == "sleepy"
        (event,) = ws.events.list(action="pipeline.failed", object_id=result.run_id)
        assert event.details["step"] == "sleepy" and "timeout" in event.details["error"]
        # The killed worker was replaced: the pool still runs steps.
        assert run(ex.fan, {"width": 2}).status == "FINISHED"
        assert shared_local_executor().alive

    def test_a_failure_skips_downstream_runs_independent_branches_and_resume_finishes(
        self, ws, tmp_path
    ):
        flag = tmp_path / "fail.flag"
        flag.write_text("x")
        failed = run(ex.failing_pipeline, {"flag_file": str(flag)})
        assert failed.status == "FAILED"
        assert failed.failed_step == "maybe_fail"
        assert "ValueError: asked to fail" in failed.error
        states = {n: s.state for n, s in failed.steps.items()}
        assert states == {
            "number": "finished",
            "maybe_fail": "failed",
            "after": "skipped",
            "independent": "finished",
        }
        flag.unlink()
        resumed = resume(failed.run_id)
        assert resumed.status == "FINISHED"
        assert resumed.cached_steps == ["number", "independent"]
        assert resumed.executed_steps == ["maybe_fail", "after"]
        assert resumed.output("after") == 3
        assert ws.tracking.get_run(resumed.run_id).tags["loopline.resumed_from"] == failed.run_id
        assert PipelineRun.load(resumed.run_id).steps["number"].cached_from == (
            failed.steps["number"].run_id
        )

    def test_a_worker_process_that_dies_fails_its_step_and_is_replaced(self, ws):
        result = run(ex.crash_pipeline, {"code": 3})
        assert result.status == "FAILED"
        assert result.error == (
            "WorkerDied: the worker process running the step exited with code 3"
        )
        assert run(ex.fan, {"width": 2}, cache=False).status == "FINISHED"

    def test_steps_defined_in_a_function_reach_workers_by_value(self, ws):
        """What a notebook or ``__main__`` does: the code is not importable by name."""

        @step
        def double(x: int) -> int:
            return 2 * x

        @pipeline
        def local_flow(x: int = 4):
            double(double(x))

        result = run(local_flow, {})
        assert result.status == "FINISHED"
        assert result.output("double_2") == 16

    def test_run_target_imports_module_function_and_returns_the_run_id(self, ws):
        run_id = run_target(f"{ex.__name__}:fan", {"width": "2"})
        loaded = PipelineRun.load(run_id)
        assert loaded.status == "FINISHED"
        assert loaded.params == {"width": 2}
        assert loaded.output("total") == 8
        assert ll.current_workspace().tracking.get_run(run_id).params == {"width": "2"}


def test_a_reused_worker_follows_the_workspace_of_each_run(tmp_path, monkeypatch):
    """One worker serves runs of two workspaces in turn (a pool outlives a run): each run's
    step sees its own workspace, not the one the worker opened first."""
    from loopline.workspace import init_workspace

    seen = []
    for name in ("first", "second"):
        home = tmp_path / name
        ws = init_workspace(home)
        monkeypatch.setenv("LOOPLINE_HOME", str(home))
        ll.use_workspace(ws)
        result = run(ex.home_pipeline, workers=1).raise_for_status()
        seen.append(result.output("workspace_home"))
    assert seen == [str((tmp_path / "first").resolve()), str((tmp_path / "second").resolve())]
