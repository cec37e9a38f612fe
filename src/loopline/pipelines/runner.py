"""Running a pipeline: build the graph, then start every step whose inputs are ready, as many
at once as the executor's capacity allows, reusing cached results, retrying failures with
backoff, stopping attempts that exceed their timeout, and recording everything as runs.

The pipeline is a run (tag ``loopline.pipeline``); every step is a child run named after it
(see :mod:`loopline.pipelines.results` for the tags). Lineage: an upstream output artifact
``Ref("artifact", "<run id>/outputs/<file>")`` -> the step run (``input``); the step run -> each
of its output artifacts (``produced``); a dataset version -> the step run (``read``).

A failed step fails the pipeline: steps downstream of it are recorded as skipped (KILLED, tag
``loopline.skipped``), independent branches still run, so a resume has less left to do.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from loopline.errors import InvalidInput
from loopline.pipelines import hashing
from loopline.pipelines.dag import Dag, Node, build, substitute, walk_outputs
from loopline.pipelines.executors import (
    Executor,
    StepTask,
    make_executor,
    shared_local_executor,
)
from loopline.pipelines.outputs import encode_output, load_output
from loopline.pipelines.recording import Recorder
from loopline.pipelines.results import (
    DAG_ARTIFACT,
    PipelineRun,
    StepRun,
    StepTimeout,
    child_runs,
    outputs_from_tag,
)
from loopline.pipelines.steps import Pipeline, StepOutput, pipeline
from loopline.pipelines.targets import coerce_params, load_target
from loopline.tracking.entities import RunStatus

__all__ = ["ProgressEvent", "coerce_params", "load_target", "resume", "run", "run_target"]

ProgressEvent = tuple[str, StepRun]
"""``(kind, step)``: kind is ``started``, ``retrying``, ``finished``, ``cached``, ``failed``
or ``skipped``; the CLI draws its live lines from these."""


def run_target(
    target: str,
    params: dict[str, str],
    *,
    executor: str = "local",
    cache: bool = True,
    tags: dict[str, Any] | None = None,
) -> str:
    """Import ``module:function``, run it with string ``params`` (coerced by the function's
    annotations) and return the pipeline run id, FINISHED or FAILED (read the status with
    ``PipelineRun.load``). The entry point for the scheduler."""
    pipe = load_target(target)
    return run(pipe, coerce_params(pipe, params), executor=executor, cache=cache, tags=tags).run_id


def run(
    pipe: Pipeline | Callable[..., Any] | str,
    params: Mapping[str, Any] | None = None,
    *,
    executor: str | Executor = "local",
    workers: int | None = None,
    cache: bool = True,
    tags: Mapping[str, Any] | None = None,
    experiment: str | None = None,
    on_event: Callable[[str, StepRun], None] | None = None,
    executor_options: Mapping[str, Any] | None = None,
    workspace: Any = None,
) -> PipelineRun:
    """Run a pipeline and wait for it; returns its :class:`PipelineRun` (status FINISHED or
    FAILED; ``.raise_for_status()`` raises on failure).

    ``executor``: a name (``local``, the default, a process pool shared by the runs of this
    process; ``ray``) or an :class:`Executor`. ``cache=False`` runs every step. ``experiment``
    names the experiment (default: the current one, as for ``ll.start_run``); cached results are
    looked up within it.
    """
    return _Runner(
        pipe,
        params or {},
        executor,
        workers,
        cache,
        tags,
        experiment,
        on_event,
        executor_options,
        workspace,
        reuse=None,
    ).execute()


def resume(
    run_id: str,
    *,
    pipe: Pipeline | Callable[..., Any] | str | None = None,
    executor: str | Executor = "local",
    workers: int | None = None,
    on_event: Callable[[str, StepRun], None] | None = None,
    workspace: Any = None,
) -> PipelineRun:
    """Run a failed pipeline again with the same parameters, as a new pipeline run (tag
    ``loopline.resumed_from``): steps that finished in it are reused, whatever their cache
    flag, as long as their code and inputs are unchanged; the rest run, from the failed step on.
    ``pipe`` is needed only when the pipeline cannot be imported by its recorded name (a
    pipeline defined in ``__main__``)."""
    ws = workspace or _current_workspace()
    old = PipelineRun.load(run_id, ws)
    if old.status == "FINISHED":
        raise InvalidInput(f"pipeline run {run_id} finished; there is nothing to resume")
    experiment_id = ws.tracking.get_run(run_id).info.experiment_id
    if pipe is None:
        pipe = ws.tracking.get_run(run_id).tags["loopline.pipeline"]
    reuse = {
        r.tags["loopline.step"]: r
        for r in child_runs(ws.tracking, experiment_id, run_id)
        if str(r.info.status) == "FINISHED" and "loopline.step" in r.tags
    }
    return _Runner(
        pipe,
        old.params,
        executor,
        workers,
        True,
        {"loopline.resumed_from": run_id},
        None,
        on_event,
        None,
        ws,
        reuse=reuse,
        experiment_id=experiment_id,
    ).execute()


def _current_workspace() -> Any:
    from loopline.api import current_workspace

    return current_workspace()


def _mtimes(modules: tuple[str, ...]) -> dict[str, int]:
    found = {}
    for name in modules:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            try:
                found[name] = os.stat(file).st_mtime_ns
            except OSError:
                pass
    return found


def _is_dataset_param(node: Node, name: str) -> bool:
    annotation = node.step.fn.__annotations__.get(name)
    if annotation is None:
        return False
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return text.rsplit(".", 1)[-1] == "DatasetVersion"


class _State:
    """The runner's bookkeeping for one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.info = StepRun(node.id, node.step.name)
        self.values: dict[str, Any] = {}
        self.future: Future[Any] | None = None
        self.deadline: float | None = None
        self.retry_at: float | None = None
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.datasets: list[Any] = []
        self.cpus = 1.0
        self.modules: dict[str, int] = {}
        self.checked = False
        self.resolved = False


class _Runner:
    def __init__(
        self,
        pipe: Pipeline | Callable[..., Any] | str,
        params: Mapping[str, Any],
        executor: str | Executor,
        workers: int | None,
        cache: bool,
        tags: Mapping[str, Any] | None,
        experiment: str | None,
        on_event: Callable[[str, StepRun], None] | None,
        executor_options: Mapping[str, Any] | None,
        workspace: Any,
        *,
        reuse: dict[str, Any] | None,
        experiment_id: str | None = None,
    ) -> None:
        if isinstance(pipe, str):
            pipe = load_target(pipe)
        elif not isinstance(pipe, Pipeline):
            pipe = pipeline(pipe)
        self.pipe = pipe
        self.dag: Dag = build(pipe, params)
        self.ws = workspace or _current_workspace()
        self.tracking = self.ws.tracking
        self.cache = cache
        self.tags = dict(tags or {})
        self.on_event = on_event
        self.reuse = reuse or {}
        self.states = {nid: _State(node) for nid, node in self.dag.nodes.items()}
        self.code_hashes: dict[int, hashing.CodeHash] = {}
        if experiment_id is None:
            if experiment is not None:
                experiment_id = self.tracking.get_or_create_experiment(experiment).experiment_id
            else:
                from loopline.tracking import fluent

                experiment_id = fluent._current_experiment_id()
        self.experiment_id = experiment_id
        self.owned = False
        if isinstance(executor, str):
            if executor == "local" and not executor_options:
                self.executor: Executor = shared_local_executor(workers)
            else:
                options = dict(executor_options or {})
                if workers is not None:
                    options["workers"] = workers
                self.executor = make_executor(executor, **options)
                self.owned = True
        else:
            self.executor = executor

    # -- the loop --------------------------------------------------------------------------
    def execute(self) -> PipelineRun:
        self._start_pipeline()
        try:
            self._loop()
        except BaseException as exc:
            for state in self.states.values():
                if state.future is not None:
                    self.executor.cancel(state.future)
            self._finish_pipeline(interrupted=exc)
            raise
        finally:
            if self.owned:
                self.executor.shutdown()
        return self._finish_pipeline()

    def _loop(self) -> None:
        order = self.dag.order()
        running: dict[Future[Any], _State] = {}
        used = 0.0
        while True:
            progressed = True
            while progressed:  # cache hits unlock downstream nodes at once
                progressed = False
                now = time.monotonic()
                for nid in order:
                    state = self.states[nid]
                    if state.info.state != "pending" or not self._ready(state):
                        continue
                    if state.retry_at is not None and state.retry_at > now:
                        continue
                    if not state.checked:
                        state.checked = True
                        try:
                            hit = self._try_cache(state)
                        except (
                            Exception
                        ) as exc:  # e.g. a dataset reference that resolves to nothing
                            self._fail_early(state, exc)
                            hit = True
                        if hit:
                            progressed = True
                            continue
                    cpus = min(state.node.step.resources.cpus, self.executor.capacity)
                    if used + cpus > self.executor.capacity and running:
                        continue
                    future = self._submit(state)
                    if future is not None:
                        running[future] = state
                        state.cpus = cpus
                        used += cpus
                    progressed = True
            if not running:
                retries = [s.retry_at for s in self.states.values() if s.retry_at is not None]
                if not retries:
                    return
                time.sleep(max(0.0, min(retries) - time.monotonic()))
                continue
            wakeup = self._next_wakeup(running)
            done, _ = wait(list(running), timeout=wakeup, return_when=FIRST_COMPLETED)
            now = time.monotonic()
            for future in done:
                state = running.pop(future)
                used -= state.cpus
                state.future = None
                exc = future.exception() if not future.cancelled() else StepTimeout("cancelled")
                if exc is None:
                    self._succeeded(state, future.result())
                else:
                    self._attempt_failed(state, exc)
            for future, state in list(running.items()):
                if state.deadline is not None and now >= state.deadline:
                    running.pop(future)
                    used -= state.cpus
                    self.executor.cancel(future)
                    state.future = None
                    self._attempt_failed(
                        state,
                        StepTimeout(
                            f"step {state.node.id!r} exceeded its timeout of "
                            f"{state.node.step.timeout:g}s (attempt {state.info.attempts}); "
                            "its worker process was stopped"
                        ),
                    )

    def _next_wakeup(self, running: dict[Future[Any], _State]) -> float | None:
        now = time.monotonic()
        times = [s.deadline for s in running.values() if s.deadline is not None]
        times += [s.retry_at for s in self.states.values() if s.retry_at is not None]
        return max(0.0, min(times) - now) if times else None

    def _ready(self, state: _State) -> bool:
        return all(self.states[u].info.state in ("finished", "cached") for u in state.node.upstream)

    def _emit(self, kind: str, state: _State) -> None:
        if self.on_event is not None:
            self.on_event(kind, state.info)

    # -- inputs and cache keys -------------------------------------------------------------
    def _code(self, state: _State) -> hashing.CodeHash:
        fn = state.node.step.fn
        found = self.code_hashes.get(id(fn))
        if found is None:
            found = self.code_hashes[id(fn)] = hashing.code_hash(fn)
        return found

    def _prepare(self, state: _State) -> None:
        """Resolve dataset references and compute the cache key (needs upstream digests)."""
        node = state.node
        datasets = []

        def digest(out: StepOutput) -> dict[str, str]:
            return {"__input__": self.states[out.node].info.outputs[out.name].digest}

        arguments = {}
        for name, value in node.arguments.items():
            if _is_dataset_param(node, name) and value is not None:
                version = self.ws.data.resolve(value)
                datasets.append(version)
                arguments[name] = {"__dataset__": version.digest}
            else:
                arguments[name] = substitute(value, digest)
        state.datasets = datasets
        code = self._code(state)
        state.modules = _mtimes(code.modules)
        state.info.cache_key = hashing.cache_key(code.digest, hashing.canonical_json(arguments), {})

    def _try_cache(self, state: _State) -> bool:
        self._prepare(state)
        key = state.info.cache_key
        source = None
        reused = self.reuse.get(state.node.id)
        if reused is not None and reused.tags.get("loopline.cache_key") == key:
            source = reused
        elif self.cache and state.node.step.cache:
            found, _ = self.tracking.search_runs(
                [self.experiment_id],
                filter_string=(
                    f"tags.`loopline.cache_key` = '{key}' and attributes.status = 'FINISHED'"
                ),
                max_results=1,
            )
            source = found[0] if found else None
        if source is None:
            return False
        outputs = outputs_from_tag(source.tags.get("loopline.outputs"))
        if set(outputs) != set(state.node.step.outputs):
            return False
        info = state.info
        info.state, info.outputs = "cached", outputs
        info.cached_from = source.tags.get("loopline.cached_from") or source.info.run_id
        info.start_ms = info.end_ms = _now_ms()
        self.recorder.cached(
            info, state.node, source.info.run_id, state.datasets, self._upstream(state)
        )
        self._emit("cached", state)
        return True

    def _upstream(self, state: _State) -> list[tuple[StepRun, str]]:
        return [
            (self.states[out.node].info, self.states[out.node].info.outputs[out.name].path)
            for value in state.node.arguments.values()
            for out in walk_outputs(value)
        ]

    def _value(self, out: StepOutput) -> Any:
        upstream = self.states[out.node]
        if out.name not in upstream.values:
            stored = upstream.info.outputs[out.name]
            rows = []
            if stored.format == "mlmodel":
                rows = self.tracking.artifact_files(upstream.info.run_id, stored.path)
            upstream.values[out.name] = load_output(self.ws.blobs, stored, rows)
        return upstream.values[out.name]

    # -- running ---------------------------------------------------------------------------
    def _resolve_args(self, state: _State) -> None:
        """The call's arguments: upstream values (loaded back if cached), dataset versions."""
        node = state.node
        datasets = iter(state.datasets)
        swap = {
            n: next(datasets)
            for n in node.arguments
            if _is_dataset_param(node, n) and node.arguments[n] is not None
        }
        args = [substitute(a, self._value) for a in node.args]
        kwargs = {k: substitute(v, self._value) for k, v in node.kwargs.items()}
        names = list(node.step.signature.parameters)
        for i in range(len(args)):
            if i < len(names) and names[i] in swap:
                args[i] = swap[names[i]]
        for k in kwargs:
            if k in swap:
                kwargs[k] = swap[k]
        state.args, state.kwargs, state.resolved = tuple(args), kwargs, True

    def _fail_early(self, state: _State, exc: BaseException) -> None:
        """A step that fails before it can start (its inputs cannot be resolved)."""
        state.info.start_ms = _now_ms()
        self.recorder.started(state.info, state.node, [])
        state.info.attempts = 1
        self._attempt_failed(state, exc, final=True)

    def _submit(self, state: _State) -> Future[Any] | None:
        node, info = state.node, state.info
        if info.attempts == 0:
            info.start_ms = _now_ms()
            self.recorder.started(info, node, state.datasets)
        if not state.resolved:
            try:
                self._resolve_args(state)
            except Exception as exc:  # an upstream output that cannot be read back
                info.attempts += 1
                self._attempt_failed(state, exc, final=True)
                return None
        info.attempts += 1
        state.retry_at = None
        task = StepTask(
            key=f"{node.id}#{info.attempts}",
            fn=node.step,
            args=state.args,
            kwargs=state.kwargs,
            timeout=node.step.timeout,
            resources=node.step.resources,
            modules=state.modules,
        )
        info.state = "running"
        self._emit("started" if info.attempts == 1 else "retrying", state)
        try:
            future = self.executor.submit(task)
        except Exception as exc:
            self._attempt_failed(state, exc)
            return None
        state.future = future
        timeout = node.step.timeout
        state.deadline = time.monotonic() + timeout if timeout else None
        return future

    def _attempt_failed(self, state: _State, exc: BaseException, final: bool = False) -> None:
        step, info = state.node.step, state.info
        info.error = f"{type(exc).__name__}: {exc}"
        if info.attempts <= step.retries and not final:
            info.state = "pending"
            state.retry_at = time.monotonic() + step.backoff * 2 ** (info.attempts - 1)
            return
        info.state = "failed"
        info.end_ms = _now_ms()
        text = getattr(exc, "loopline_traceback", None) or info.error
        self.recorder.failed(info, state.node, info.error, text)
        self._emit("failed", state)
        for nid in self.dag.downstream(state.node.id):
            self._skip(self.states[nid], f"upstream step {state.node.id!r} failed")

    def _skip(self, state: _State, reason: str) -> None:
        if state.info.state != "pending":
            return
        state.info.state, state.info.error = "skipped", reason
        self.recorder.skipped(state.info, state.node, reason)
        state.info.end_ms = _now_ms()
        self._emit("skipped", state)

    def _succeeded(self, state: _State, value: Any) -> None:
        node, info = state.node, state.info
        if node.step.tuple_output:
            if not isinstance(value, tuple | list) or len(value) != len(node.step.outputs):
                self._attempt_failed(
                    state,
                    InvalidInput(
                        f"step {node.id!r} declares {len(node.step.outputs)} outputs but returned "
                        f"{type(value).__name__}"
                    ),
                )
                return
            values = dict(zip(node.step.outputs, value, strict=True))
        else:
            values = {node.step.outputs[0]: value}
        try:
            encoded = [encode_output(n, v) for n, v in values.items()]
        except Exception as exc:
            self._attempt_failed(state, exc)
            return
        info.outputs = {e.stored.name: e.stored for e in encoded}
        state.values = values
        info.state, info.end_ms, info.error = "finished", _now_ms(), None
        self.recorder.finished(info, node, encoded, self._upstream(state))
        self._emit("finished", state)

    # -- the pipeline run ------------------------------------------------------------------
    def _start_pipeline(self) -> None:
        import json

        from loopline.tracking import fluent

        active = fluent.active_run()
        tags = {"loopline.pipeline": self.pipe.qualified_name, **self.tags}
        run = self.tracking.create_run(
            self.experiment_id,
            self.pipe.name,
            tags,
            parent_run_id=active.run_id if active is not None else None,
        )
        self.run_id = run.info.run_id
        self.recorder = Recorder(self.ws, self.experiment_id, self.run_id)
        params_json = {k: hashing._canonical(v) for k, v in self.dag.params.items()}
        if self.dag.params:
            self.tracking.log_batch(
                self.run_id,
                params=[
                    (k, v if isinstance(v, str) else json.dumps(params_json[k]))
                    for k, v in self.dag.params.items()
                ],
            )
        doc = {
            "graph": self.dag.to_dict(),
            "params": params_json,
            "target": self.pipe.qualified_name,
        }
        self.tracking.log_bytes(self.run_id, DAG_ARTIFACT, json.dumps(doc, indent=1).encode())

    def _finish_pipeline(self, interrupted: BaseException | None = None) -> PipelineRun:
        record_error: Exception | None = None
        try:
            self.recorder.close()
        except Exception as exc:  # a write failed: the run must not claim FINISHED
            record_error = exc
            interrupted = interrupted or exc
        failed = next((s for s in self.states.values() if s.info.state == "failed"), None)
        status = RunStatus.FINISHED
        tags: list[tuple[str, Any]] = []
        if interrupted is not None:
            status = (
                RunStatus.KILLED
                if isinstance(interrupted, KeyboardInterrupt)
                else (RunStatus.FAILED)
            )
            tags.append(("loopline.pipeline.error", f"{type(interrupted).__name__}: {interrupted}"))
        elif failed is not None:
            status = RunStatus.FAILED
            tags += [
                ("loopline.pipeline.failed_step", failed.node.id),
                ("loopline.pipeline.error", (failed.info.error or "")[:7000]),
            ]
        counts: dict[str, int] = {}
        for s in self.states.values():
            counts[s.info.state] = counts.get(s.info.state, 0) + 1
        tags.append(
            ("loopline.pipeline.steps", " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        )
        self.tracking.log_batch(self.run_id, tags=tags)
        self.tracking.end_run(self.run_id, status)
        if failed is not None:
            self.ws.events.record(
                None,
                "pipeline.failed",
                "run",
                self.run_id,
                {"step": failed.node.id, "error": failed.info.error},
            )
        result = PipelineRun(
            run_id=self.run_id,
            name=self.pipe.name,
            status=str(status),
            steps={nid: s.info for nid, s in self.states.items()},
            params=self.dag.params,
            graph=self.dag.to_dict(),
            failed_step=failed.node.id if failed else None,
            error=failed.info.error if failed else None,
        )
        if record_error is not None and record_error is interrupted:
            raise record_error
        return result


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
