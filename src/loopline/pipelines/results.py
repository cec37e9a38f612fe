"""What a pipeline run looks like afterwards: :class:`PipelineRun` and its :class:`StepRun`s,
read back from the tracking store (``PipelineRun.load``) or handed over by the runner.

Tags the runner writes, the whole contract between the runner, the CLI and the scheduler:

| on | tag | value |
|---|---|---|
| pipeline run | ``loopline.pipeline`` | ``module:qualname`` of the pipeline function |
| pipeline run | ``loopline.pipeline.failed_step`` / ``loopline.pipeline.error`` | when FAILED |
| pipeline run | ``loopline.resumed_from`` | the failed run a resume continued |
| step run | ``loopline.step`` | the node id (step name; ``name_2`` for a second call) |
| step run | ``loopline.cache_key`` | code hash + params + input digests |
| step run | ``loopline.cached`` / ``loopline.cached_from`` | ``true`` and the producing run |
| step run | ``loopline.outputs`` | JSON: output name -> format, artifact path, digest |
| step run | ``loopline.attempts`` / ``loopline.error`` | attempts made; the last error |
| step run | ``loopline.skipped`` | why it did not run (status KILLED) |

The graph and the parameters live in the pipeline run's artifact ``pipeline/dag.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from loopline.errors import InvalidInput, LooplineError, NotFound
from loopline.pipelines.outputs import StoredOutput

__all__ = ["DAG_ARTIFACT", "PipelineFailed", "PipelineRun", "StepRun", "StepTimeout"]

DAG_ARTIFACT = "pipeline/dag.json"


class StepTimeout(LooplineError, TimeoutError):
    """A step attempt ran longer than its ``timeout``; its worker was stopped."""


class PipelineFailed(LooplineError):
    """Raised by :meth:`PipelineRun.raise_for_status` for a FAILED pipeline run."""


@dataclass
class StepRun:
    """One node of a pipeline run. ``state`` is ``finished``, ``cached``, ``failed``,
    ``skipped`` (an upstream step failed) or ``pending``/``running`` while in progress."""

    name: str
    step: str
    state: str = "pending"
    run_id: str | None = None
    cache_key: str | None = None
    cached_from: str | None = None
    attempts: int = 0
    error: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    outputs: dict[str, StoredOutput] = field(default_factory=dict)

    @property
    def cached(self) -> bool:
        return self.state == "cached"

    @property
    def duration_s(self) -> float | None:
        if self.start_ms is None or self.end_ms is None:
            return None
        return (self.end_ms - self.start_ms) / 1000


def outputs_from_tag(text: str | None) -> dict[str, StoredOutput]:
    if not text:
        return {}
    return {
        name: StoredOutput(name, o["format"], o["path"], o["digest"])
        for name, o in json.loads(text).items()
    }


def outputs_tag(outputs: dict[str, StoredOutput]) -> str:
    return json.dumps({n: o.to_json() for n, o in outputs.items()}, sort_keys=True)


@dataclass
class PipelineRun:
    run_id: str
    name: str
    status: str
    steps: dict[str, StepRun]
    params: dict[str, Any] = field(default_factory=dict)
    graph: dict[str, Any] = field(default_factory=dict)
    failed_step: str | None = None
    error: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None

    @property
    def cached_steps(self) -> list[str]:
        return [n for n, s in self.steps.items() if s.state == "cached"]

    @property
    def executed_steps(self) -> list[str]:
        """Steps that ran their code in this run (finished or failed), in graph order."""
        return [n for n, s in self.steps.items() if s.state in ("finished", "failed")]

    def raise_for_status(self) -> PipelineRun:
        if self.status != "FINISHED":
            raise PipelineFailed(
                f"pipeline run {self.run_id} {self.status}: step {self.failed_step!r} "
                f"failed: {self.error}"
            )
        return self

    def output(self, step: str, name: str | None = None, workspace: Any = None) -> Any:
        """The value step ``step`` returned (output ``name`` of a multi-output step), read
        back from its artifact."""
        from loopline.pipelines.outputs import load_output

        if step not in self.steps:
            raise NotFound(f"pipeline run {self.run_id} has no step {step!r}")
        found = self.steps[step]
        if not found.outputs:
            raise NotFound(f"step {step!r} of pipeline run {self.run_id} stored no outputs")
        if name is None:
            if len(found.outputs) != 1:
                raise InvalidInput(f"step {step!r} has outputs {sorted(found.outputs)}; name one")
            name = next(iter(found.outputs))
        stored = found.outputs[name]
        ws = workspace or _workspace()
        rows = []
        if stored.format == "mlmodel":
            rows = ws.tracking.artifact_files(found.run_id, stored.path)
        return load_output(ws.blobs, stored, rows)

    @classmethod
    def load(cls, run_id: str, workspace: Any = None) -> PipelineRun:
        """Read a pipeline run and its steps back from the tracking store."""
        ws = workspace or _workspace()
        tracking = ws.tracking
        run = tracking.get_run(run_id)
        if "loopline.pipeline" not in run.tags:
            raise InvalidInput(
                f"run {run_id} is not a pipeline run; list them with 'loopline pipeline list'"
            )
        try:
            with tracking.open_artifact(run_id, DAG_ARTIFACT) as fh:
                doc = json.loads(fh.read())
        except NotFound:
            doc = {"graph": {"nodes": [], "edges": []}, "params": {}}
        children = child_runs(tracking, run.info.experiment_id, run_id)
        steps: dict[str, StepRun] = {}
        for node in doc["graph"]["nodes"]:
            steps[node["id"]] = StepRun(node["id"], node["step"])
        for child in sorted(children, key=lambda r: r.info.start_time):
            node_id = child.tags.get("loopline.step")
            if node_id is None:
                continue
            steps[node_id] = step_from_run(child, steps.get(node_id))
        return cls(
            run_id=run_id,
            name=run.info.run_name,
            status=str(run.info.status),
            steps=steps,
            params=doc.get("params", {}),
            graph=doc["graph"],
            failed_step=run.tags.get("loopline.pipeline.failed_step"),
            error=run.tags.get("loopline.pipeline.error"),
            start_ms=run.info.start_time,
            end_ms=run.info.end_time,
        )


def step_from_run(run: Any, known: StepRun | None) -> StepRun:
    tags = run.tags
    status = str(run.info.status)
    if tags.get("loopline.cached") == "true":
        state = "cached"
    elif "loopline.skipped" in tags:
        state = "skipped"
    else:
        state = {"FINISHED": "finished", "FAILED": "failed", "RUNNING": "running"}.get(
            status, status.lower()
        )
    return StepRun(
        name=tags["loopline.step"],
        step=known.step if known else run.info.run_name,
        state=state,
        run_id=run.info.run_id,
        cache_key=tags.get("loopline.cache_key"),
        cached_from=tags.get("loopline.cached_from"),
        attempts=int(tags.get("loopline.attempts", "0") or 0),
        error=tags.get("loopline.error") or tags.get("loopline.skipped"),
        start_ms=run.info.start_time,
        end_ms=run.info.end_time,
        outputs=outputs_from_tag(tags.get("loopline.outputs")),
    )


def child_runs(tracking: Any, experiment_id: str, parent_id: str) -> list[Any]:
    runs, _ = tracking.search_runs(
        [experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'",
        max_results=50_000,
    )
    return list(runs)


def _workspace() -> Any:
    from loopline.api import current_workspace

    return current_workspace()
