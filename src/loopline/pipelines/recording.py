"""Writing a pipeline's records (step runs, params, tags, output blobs and artifact rows,
lineage edges) on one background thread.

Why a thread: a step's bookkeeping is about ten small transactions and an fsync'd blob; done
inline it would sit on the critical path between one step finishing and the next starting.
The runner needs only the output *digests* to go on (computed in memory), so it hands the
writes to this recorder and moves on. One thread, jobs in submission order: a step's run is
created before anything refers to its id, and an upstream step's run id is known before a
downstream job links to it. :meth:`Recorder.close` waits for every job and re-raises the
first failure, so a pipeline never reports FINISHED with records missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from loopline.entities import Ref
from loopline.pipelines import hashing
from loopline.pipelines.dag import Node, walk_outputs
from loopline.pipelines.outputs import EncodedOutput
from loopline.pipelines.results import StepRun, outputs_tag
from loopline.tracking.entities import RunStatus

__all__ = ["Recorder"]

Upstream = Sequence[tuple[StepRun, str]]
"""``(upstream step, artifact path)`` for each input; the run id is read when the job runs."""


def step_params(node: Node) -> list[tuple[str, str]]:
    """A step run's params: its arguments that are not upstream outputs, as text."""
    params = []
    for name, value in node.arguments.items():
        if not any(True for _ in walk_outputs(value)):
            text = value if isinstance(value, str) else hashing.canonical_json(value)
            params.append((name, text[:6000]))
    return params


class Recorder:
    def __init__(self, ws: Any, experiment_id: str, pipeline_run_id: str) -> None:
        self.ws = ws
        self.tracking = ws.tracking
        self.experiment_id = experiment_id
        self.pipeline_run_id = pipeline_run_id
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="loopline-recorder")
        # Blob writes end in an fsync each; a few threads overlap those waits (the GIL is
        # released) while the recorder thread writes rows.
        self._io = ThreadPoolExecutor(4, thread_name_prefix="loopline-blobs")
        self._jobs: list[Future[Any]] = []

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._jobs.append(self._thread.submit(fn, *args))
        if len(self._jobs) > 256:  # keep the list short; failures surface in close()
            self._jobs = [j for j in self._jobs if not j.done() or j.exception() is not None]

    def close(self) -> None:
        """Wait for every write; raise the first that failed."""
        self._thread.shutdown(wait=True)
        self._io.shutdown(wait=True)
        for job in self._jobs:
            exc = job.exception()
            if exc is not None:
                raise exc

    # -- jobs ------------------------------------------------------------------------------
    def started(self, info: StepRun, node: Node, datasets: Sequence[Any]) -> None:
        self._submit(self._create, info, node, {}, datasets)

    def cached(
        self,
        info: StepRun,
        node: Node,
        source_run_id: str,
        datasets: Sequence[Any],
        upstream: Upstream,
    ) -> None:
        self._submit(self._cached, info, node, source_run_id, datasets, upstream)

    def finished(
        self, info: StepRun, node: Node, encoded: Sequence[EncodedOutput], upstream: Upstream
    ) -> None:
        puts = [self._io.submit(e.put, self.ws.blobs) for e in encoded]
        self._submit(self._finished, info, node, list(encoded), puts, upstream)

    def failed(self, info: StepRun, node: Node, error: str, text: str) -> None:
        self._submit(self._failed, info, node, error, text)

    def skipped(self, info: StepRun, node: Node, reason: str) -> None:
        self._submit(self._skipped, info, node, reason)

    # -- what the jobs do ------------------------------------------------------------------
    def _create(
        self, info: StepRun, node: Node, tags: dict[str, str], datasets: Sequence[Any] = ()
    ) -> None:
        all_tags = {"loopline.step": node.id, **tags}
        if info.cache_key:
            all_tags["loopline.cache_key"] = info.cache_key
        run = self.tracking.create_run(
            self.experiment_id, node.id, all_tags, parent_run_id=self.pipeline_run_id
        )
        info.run_id = run.info.run_id
        for version in datasets:
            self.ws.data.use(version, info.run_id)

    def _end(self, info: StepRun, node: Node, tags: list[tuple[str, Any]], status: str) -> None:
        assert info.run_id is not None
        self.tracking.log_batch(info.run_id, params=step_params(node), tags=tags)
        self.tracking.end_run(info.run_id, status)

    def _cached(
        self,
        info: StepRun,
        node: Node,
        source_run_id: str,
        datasets: Sequence[Any],
        upstream: Upstream,
    ) -> None:
        self._create(
            info,
            node,
            {"loopline.cached": "true", "loopline.cached_from": info.cached_from or ""},
            datasets,
        )
        assert info.run_id is not None
        self._attach(info.run_id, self.tracking.artifact_files(source_run_id, "outputs"))
        self._link(info, upstream)
        self._end(info, node, [("loopline.outputs", outputs_tag(info.outputs))], "FINISHED")

    def _finished(
        self,
        info: StepRun,
        node: Node,
        encoded: list[EncodedOutput],
        puts: list[Future[list[Any]]],
        upstream: Upstream,
    ) -> None:
        assert info.run_id is not None
        rows = [row for put in puts for row in put.result()]
        self._attach(info.run_id, rows)
        self._link(info, upstream)
        tags = [
            ("loopline.outputs", outputs_tag({e.stored.name: e.stored for e in encoded})),
            ("loopline.attempts", info.attempts),
            ("loopline.cached", "false"),
        ]
        self._end(info, node, tags, RunStatus.FINISHED)

    def _failed(self, info: StepRun, node: Node, error: str, text: str) -> None:
        tags = [
            ("loopline.error", error[:7000]),
            ("loopline.attempts", info.attempts),
            ("loopline.traceback", text[-7000:]),
        ]
        self._end(info, node, tags, RunStatus.FAILED)

    def _skipped(self, info: StepRun, node: Node, reason: str) -> None:
        self._create(info, node, {"loopline.skipped": reason})
        self._end(info, node, [], RunStatus.KILLED)

    def _attach(self, run_id: str, rows: list[Any]) -> None:
        """Record artifact rows whose blobs are already stored (for a cache hit, the earlier
        run's): only rows are written, no byte is uploaded again."""
        if not rows:
            return
        store = getattr(self.tracking, "store", None)
        if store is not None and hasattr(store, "add_artifacts"):
            store.add_artifacts(run_id, rows)
            return
        for row in rows:  # a remote tracking service: send the bytes (the server dedups)
            self.tracking.log_bytes(run_id, row.path, self.ws.blobs.read_bytes(row.digest))

    def _link(self, info: StepRun, upstream: Upstream) -> None:
        link, run = self.ws.lineage.link, Ref("run", info.run_id or "")
        for step, path in upstream:
            link(Ref("artifact", f"{step.run_id}/{path}"), run, "input")
        for stored in info.outputs.values():
            link(run, Ref("artifact", f"{info.run_id}/{stored.path}"), "produced")
