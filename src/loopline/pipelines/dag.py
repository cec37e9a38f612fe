"""The pipeline graph: nodes (step calls), edges (outputs passed to inputs), topological order,
and rendering as text, mermaid and Graphviz dot.

A graph is built by calling the pipeline function under a :class:`Builder`; it is stored with
the pipeline run as ``pipeline/dag.json`` (:meth:`Dag.to_dict`), so ``loopline pipeline graph``
renders a past run without importing its code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from loopline.errors import InvalidInput
from loopline.pipelines.steps import Pipeline, Step, StepOutput, set_builder

__all__ = ["Builder", "Dag", "Node", "build", "render", "walk_outputs"]


@dataclass
class Node:
    """One call of a step in the pipeline: its unique id (the step name, ``name_2`` for a
    second call), the step and the bound arguments (placeholders where upstream outputs go)."""

    id: str
    step: Step
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    arguments: dict[str, Any]
    """Parameter name -> value, defaults applied: what is hashed and logged as params."""
    upstream: list[str] = field(default_factory=list)


def walk_outputs(value: Any) -> Iterator[StepOutput]:
    """Every placeholder in an argument: itself, or inside a list, tuple or dict (one level
    deep, the shapes fan-in takes: ``combine([a, b, c])``)."""
    if isinstance(value, StepOutput):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, StepOutput):
                yield item
    elif isinstance(value, dict):
        for item in value.values():
            if isinstance(item, StepOutput):
                yield item


def substitute(value: Any, lookup: Callable[[StepOutput], Any]) -> Any:
    """``value`` with every placeholder replaced by ``lookup(placeholder)``."""
    if isinstance(value, StepOutput):
        return lookup(value)
    if isinstance(value, list | tuple) and any(isinstance(v, StepOutput) for v in value):
        return type(value)(lookup(v) if isinstance(v, StepOutput) else v for v in value)
    if isinstance(value, dict) and any(isinstance(v, StepOutput) for v in value.values()):
        return {k: lookup(v) if isinstance(v, StepOutput) else v for k, v in value.items()}
    return value


class Builder:
    """Collects nodes while a pipeline function runs; see :func:`build`."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {step.name!r}: {exc}") from None
        bound.apply_defaults()
        node_id, n = step.name, 1
        while node_id in self.nodes:
            n += 1
            node_id = f"{step.name}_{n}"
        upstream: list[str] = []
        for value in bound.arguments.values():
            for out in walk_outputs(value):
                if out.node not in self.nodes:
                    raise InvalidInput(f"{out!r} does not belong to this pipeline")
                if out.node not in upstream:
                    upstream.append(out.node)
        self.nodes[node_id] = Node(
            node_id, step, bound.args, dict(bound.kwargs), dict(bound.arguments), upstream
        )
        outs = [StepOutput(node_id, name) for name in step.outputs]
        return tuple(outs) if step.tuple_output else outs[0]


@dataclass
class Dag:
    nodes: dict[str, Node]
    params: dict[str, Any]

    def order(self) -> list[str]:
        """Node ids in a topological order. Nodes are added only after their inputs exist, so
        insertion order already is one."""
        return list(self.nodes)

    def downstream(self, node_id: str) -> list[str]:
        """Every node that depends on ``node_id``, transitively, in topological order."""
        affected = {node_id}
        found = []
        for nid, node in self.nodes.items():
            if any(u in affected for u in node.upstream):
                affected.add(nid)
                found.append(nid)
        return found

    def to_dict(self) -> dict[str, Any]:
        edges = []
        for node in self.nodes.values():
            for name, value in node.arguments.items():
                for out in walk_outputs(value):
                    edges.append(
                        {"source": out.node, "output": out.name, "target": node.id, "input": name}
                    )
        return {
            "nodes": [
                {
                    "id": n.id,
                    "step": n.step.name,
                    "function": f"{n.step.fn.__module__}:{n.step.fn.__qualname__}",
                    "outputs": n.step.outputs,
                }
                for n in self.nodes.values()
            ],
            "edges": edges,
        }


def build(pipe: Pipeline | Callable[..., Any], params: Mapping[str, Any]) -> Dag:
    """Call the pipeline function with ``params`` under a builder: steps record nodes instead of
    running. Unknown parameter names are an error, naming the ones the pipeline takes."""
    fn = pipe.fn if isinstance(pipe, Pipeline) else pipe
    signature = inspect.signature(fn)
    try:
        bound = signature.bind(**params)
    except TypeError as exc:
        names = ", ".join(signature.parameters) or "none"
        raise InvalidInput(f"pipeline parameters: {exc} (it takes: {names})") from None
    bound.apply_defaults()
    builder = Builder()
    previous = set_builder(builder)
    try:
        fn(*bound.args, **bound.kwargs)
    finally:
        set_builder(previous)
    if not builder.nodes:
        raise InvalidInput(f"pipeline {fn.__qualname__!r} calls no steps")
    return Dag(builder.nodes, dict(bound.arguments))


# -- rendering ---------------------------------------------------------------------------------
def _label(node: Mapping[str, Any], status: Mapping[str, str]) -> str:
    state = status.get(node["id"])
    return f"{node['id']} [{state}]" if state else str(node["id"])


def render(
    graph: Mapping[str, Any], fmt: str = "text", status: Mapping[str, str] | None = None
) -> str:
    """The graph of :meth:`Dag.to_dict` as ``text`` (one line per node with its inputs),
    ``mermaid`` (``flowchart TD``) or ``dot`` (Graphviz); ``status`` labels nodes."""
    nodes, edges = graph["nodes"], graph["edges"]
    status = status or {}
    if fmt == "text":
        lines = []
        for node in nodes:
            inputs = [f"{e['source']}.{e['output']}" for e in edges if e["target"] == node["id"]]
            arrow = f"  <- {', '.join(inputs)}" if inputs else ""
            lines.append(f"{_label(node, status)}{arrow}")
        return "\n".join(lines) + "\n"
    index = {node["id"]: f"n{i}" for i, node in enumerate(nodes)}
    if fmt == "mermaid":
        lines = ["flowchart TD"]
        for node in nodes:
            text = _label(node, status).replace('"', "'")
            lines.append(f'    {index[node["id"]]}["{text}"]')
        for e in edges:
            lines.append(f"    {index[e['source']]} -->|{e['output']}| {index[e['target']]}")
        return "\n".join(lines) + "\n"
    if fmt == "dot":
        lines = ["digraph pipeline {", "    rankdir=TB;", "    node [shape=box];"]
        for node in nodes:
            text = _label(node, status).replace('"', '\\"')
            lines.append(f'    {index[node["id"]]} [label="{text}"];')
        for e in edges:
            label = f"{e['output']} -> {e['input']}".replace('"', '\\"')
            lines.append(f'    {index[e["source"]]} -> {index[e["target"]]} [label="{label}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"
    raise InvalidInput(f"graph format {fmt!r} is not one of text, mermaid, dot")
