"""The fluent tracking API (``ll.start_run``, ``ll.log_metric``, ...), MLflow's shape on
Loopline's engine.

State: one background writer per process (re-created after ``fork``), one stack of active runs
per thread, and a registry of every run this process started so interpreter exit and SIGTERM can
flush and close them. Values are validated here, on the caller's thread; only valid values are
queued.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import signal
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from loopline.errors import Conflict, InvalidInput
from loopline.store.database import now_ms
from loopline.tracking import capture as capture_mod
from loopline.tracking.entities import Experiment, Metric, Run, RunInfo, RunStatus, ViewType
from loopline.tracking.service import DEFAULT_EXPERIMENT_ID, TrackingService
from loopline.tracking.validation import check_run_id, make_metric, param_value, tag_value
from loopline.tracking.writer import BatchWriter

__all__ = [
    "ActiveRun",
    "active_run",
    "end_run",
    "flush",
    "get_metric_history",
    "get_run",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "search_runs",
    "seed_everything",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
]


class ActiveRun:
    """The handle ``start_run`` returns; as a context manager it ends the run on exit:
    FINISHED normally, FAILED on an exception, KILLED on Ctrl-C."""

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def info(self) -> RunInfo:
        return self._run.info

    @property
    def run_id(self) -> str:
        return self._run.info.run_id

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        _end(self.run_id, status)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.run_id} {self.info.run_name!r}>"


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pid = os.getpid()
        self.writer: BatchWriter | None = None
        self.writer_service: TrackingService | None = None
        self.experiment_id: str | None = None
        self.params: dict[str, dict[str, str]] = {}
        self.registry: dict[str, ActiveRun] = {}
        self.monitors: dict[str, Any] = {}
        self.local = threading.local()
        self.last_run_id: str | None = None
        self.hooks_installed = False
        self.queued: set[str] = set()
        """Runs started with ``start_queued_run`` and not ended yet."""
        self.queued_seq = 0  # queued creations and ends submitted, ever
        self.flushed_seq = 0  # ... of which a flush has seen the write
        self.experiments: dict[str, Experiment] = {}


_state = _State()


def _check_fork() -> None:
    if _state.pid != os.getpid():  # the writer thread did not survive fork(); start afresh
        _state.__init__()  # type: ignore[misc]


def _service() -> TrackingService:
    from loopline.api import current_workspace

    return current_workspace().tracking


def _writer() -> BatchWriter:
    _check_fork()
    service = _service()
    writer = _state.writer
    if writer is not None and _state.writer_service is service:
        return writer  # the per-call path: no lock once the writer exists
    with _state.lock:
        if _state.writer is None or _state.writer_service is not service:
            if _state.writer is not None:
                _state.writer.close()
            # Runs can be queued only where they can be planned here: not through a server.
            _state.writer = BatchWriter(
                service.log_batch, runs=service if isinstance(service, TrackingService) else None
            )
            _state.writer_service = service
        return _state.writer


def flush(timeout: float | None = None) -> None:
    """Block until every value logged so far is stored."""
    _check_fork()
    writer = _state.writer
    if writer is not None:
        seq = _state.queued_seq
        writer.flush(timeout)
        _state.flushed_seq = max(_state.flushed_seq, seq)


def reset() -> None:
    """Flush and drop per-workspace state; called when the current workspace changes."""
    with _state.lock:
        if _state.writer is not None:
            try:
                _state.writer.close()
            finally:
                _state.writer = None
                _state.writer_service = None
        _state.experiment_id = None
        _state.params.clear()
        _state.experiments.clear()


def _stack() -> list[ActiveRun]:
    _check_fork()
    stack = getattr(_state.local, "stack", None)
    if stack is None:
        stack = _state.local.stack = []
    return stack


# -- experiments and runs ------------------------------------------------------------------
def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Any:
    """Make an experiment current for new runs, creating it by name if needed."""
    service = _service()
    if experiment_id is not None:
        experiment = service.get_experiment(str(experiment_id))
    elif experiment_name is not None:
        experiment = service.get_or_create_experiment(experiment_name)
    else:
        raise InvalidInput("set_experiment needs experiment_name or experiment_id")
    _state.experiment_id = experiment.experiment_id
    return experiment


def _current_experiment_id() -> str:
    if _state.experiment_id is not None:
        return _state.experiment_id
    name = os.environ.get("LOOPLINE_EXPERIMENT_NAME") or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if name:
        return set_experiment(name).experiment_id  # type: ignore[no-any-return]
    return DEFAULT_EXPERIMENT_ID


def _install_hooks() -> None:
    if _state.hooks_installed:
        return
    _state.hooks_installed = True
    atexit.register(_at_exit)
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # pragma: no cover - not the main interpreter
            pass


def _close_all(status: RunStatus) -> None:
    if _state.pid != os.getpid():
        return
    try:
        flush(timeout=10)
    except Exception:
        pass
    for run_id in list(_state.registry):
        try:
            _end(run_id, status)
        except Exception:
            pass
    try:
        flush(timeout=10)  # the ends of queued runs
    except Exception:
        pass


def _at_exit() -> None:
    _close_all(RunStatus.FINISHED)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _close_all(RunStatus.KILLED)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    capture: bool = True,
    log_system_metrics: bool = False,
) -> ActiveRun:
    """Start a run (or resume ``run_id``) and make it active on this thread.

    ``capture`` records git commit/branch/diff, Python, OS, CPU/GPU, the installed packages and
    the entry-point file. ``nested=True`` makes the new run a child of the active one.
    """
    stack = _stack()
    service = _service()
    if stack and not nested and run_id != stack[-1].run_id:
        raise Conflict(
            f"run {stack[-1].run_id} is already active; call end_run() first or pass nested=True"
        )
    if run_id is not None:
        run = service.resume_run(check_run_id(run_id))
        _state.params[run.run_id] = dict(run.params)
    else:
        parent = parent_run_id or (stack[-1].run_id if nested and stack else None)
        all_tags = dict(tags or {})
        if description:
            all_tags["mlflow.note.content"] = description
        if capture:
            captured = capture_mod.collect()
            all_tags = {**captured.tags, **all_tags}
        run = service.create_run(
            str(experiment_id) if experiment_id is not None else _current_experiment_id(),
            run_name,
            all_tags,
            parent_run_id=parent,
        )
        _state.params[run.run_id] = {}
        if capture:
            for path, text in captured.texts.items():
                service.log_bytes(run.run_id, path, text.encode())
            for path, file in captured.files.items():
                try:
                    service.log_bytes(run.run_id, path, file.read_bytes())
                except OSError:
                    pass
    active = ActiveRun(run)
    stack.append(active)
    with _state.lock:
        _state.registry[run.run_id] = active
    _state.last_run_id = run.run_id
    _install_hooks()
    if log_system_metrics:
        from loopline.tracking.system_metrics import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(run.run_id, log_metrics_fn=_submit_metrics)
        monitor.start()
        _state.monitors[run.run_id] = monitor
    return active


def start_queued_run(
    experiment_id: str,
    run_name: str,
    parent_run_id: str,
    tags: Mapping[str, Any] | None = None,
) -> ActiveRun:
    """Start a child run whose creation, like its logging, goes through the background writer:
    for many short runs from one process (a study's trials), each costing no transaction of
    its own. Until a flush (``flush``, ``get_run`` and the artifact calls do one), the run is
    not in the store; a process killed before that loses it, as it would queued values.
    Against a tracking server the run is created at once, as ``start_run`` would."""
    writer = _writer()
    if not writer.takes_runs:
        return start_run(
            experiment_id=experiment_id,
            run_name=run_name,
            parent_run_id=parent_run_id,
            nested=True,
            tags=tags,
            capture=False,
        )
    service = _service()
    experiment = _state.experiments.get(experiment_id)
    if experiment is None:
        experiment = _state.experiments[experiment_id] = service.get_experiment(experiment_id)
    record = service.plan_run(experiment, run_name, dict(tags or {}), parent_run_id=parent_run_id)
    run_id = record.info.run_id
    active = ActiveRun(Run(record.info, tags=dict(record.tags)))
    with _state.lock:
        writer.submit_run(record)
        _state.queued_seq += 1
        _state.queued.add(run_id)
        _state.params[run_id] = {}
        _state.registry[run_id] = active
    _stack().append(active)
    _state.last_run_id = run_id
    _install_hooks()
    return active


def _stored(run_id: str) -> str:
    """``run_id``, after a flush if a queued run may not be written yet."""
    if _state.queued_seq > _state.flushed_seq:
        flush()
    return run_id


def _end(run_id: str, status: RunStatus | str) -> None:
    monitor = _state.monitors.pop(run_id, None)
    if monitor is not None:
        monitor.stop()
    queued = run_id in _state.queued
    if not queued:
        flush()
    stack = _stack()
    for i in range(len(stack) - 1, -1, -1):
        if stack[i].run_id == run_id:
            del stack[i]
            break
    with _state.lock:
        _state.registry.pop(run_id, None)
        _state.params.pop(run_id, None)
        if queued:
            _state.queued.discard(run_id)
            _writer().submit_end(run_id, RunStatus(status), now_ms())
            _state.queued_seq += 1
    if not queued:
        _service().end_run(run_id, status)


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End the active run (no-op if none)."""
    stack = _stack()
    if stack:
        _end(stack[-1].run_id, status)


def active_run() -> ActiveRun | None:
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The most recent run this process started, active or ended."""
    if _state.last_run_id is None:
        return None
    return get_run(_state.last_run_id)


def _run_id(run_id: str | None) -> str:
    if run_id is not None:
        return check_run_id(run_id)
    stack = _stack()
    if stack:
        return stack[-1].run_id
    return start_run().run_id  # like MLflow: logging without a run starts one


# -- logging -------------------------------------------------------------------------------
def _submit_metrics(run_id: str, metrics: list[Metric]) -> None:
    _writer().submit(run_id, metrics=metrics)


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    """Queue one metric point; returns at once. ``synchronous=True`` waits until stored."""
    metric = make_metric(key, value, step, timestamp)
    _writer().submit(_run_id(run_id), metrics=[metric])
    if synchronous:
        flush()


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    points = [make_metric(k, v, step, timestamp) for k, v in metrics.items()]
    _writer().submit(_run_id(run_id), metrics=points)
    if synchronous:
        flush()


def _remember_params(run_id: str, items: Mapping[str, str]) -> None:
    with _state.lock:
        known = _state.params.get(run_id)
        if known is None:
            known = _state.params[run_id] = dict(_service().get_run(run_id).params)
        for key, value in items.items():
            old = known.get(key)
            if old is not None and old != value:
                raise Conflict(
                    f"param {key!r} of run {run_id} is already {old!r}; params cannot change "
                    f"(tried {value!r}). Log it under another key or start a new run"
                )
        known.update(items)


def log_param(
    key: str, value: Any, synchronous: bool | None = None, run_id: str | None = None
) -> str:
    """Queue a param; changing a param already logged raises Conflict here, at once."""
    text = param_value(key, value)
    rid = _run_id(run_id)
    _remember_params(rid, {key: text})
    _writer().submit(rid, params=[(key, text)])
    if synchronous:
        flush()
    return text


def log_params(
    params: Mapping[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> None:
    clean = {k: param_value(k, v) for k, v in params.items()}
    rid = _run_id(run_id)
    _remember_params(rid, clean)
    _writer().submit(rid, params=list(clean.items()))
    if synchronous:
        flush()


def set_tag(
    key: str, value: Any, synchronous: bool | None = None, run_id: str | None = None
) -> None:
    _writer().submit(_run_id(run_id), tags=[(key, tag_value(key, value))])
    if synchronous:
        flush()


def set_tags(
    tags: Mapping[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> None:
    _writer().submit(_run_id(run_id), tags=[(k, tag_value(k, v)) for k, v in tags.items()])
    if synchronous:
        flush()


def seed_everything(seed: int) -> dict[str, Any]:
    """Seed random, NumPy and PyTorch (if imported) and record the seed on the active run."""
    seeded = capture_mod.seed_everything(seed)
    if _stack():
        set_tag("loopline.seed", seed)
    return seeded


# -- artifacts -----------------------------------------------------------------------------
def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> str:
    """Store a file as an artifact of the run; returns its artifact path."""
    return _service().log_artifact(_stored(_run_id(run_id)), local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> list[str]:
    return _service().log_artifacts(_stored(_run_id(run_id)), local_dir, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> str:
    return _service().log_bytes(_stored(_run_id(run_id)), artifact_file, text.encode())


def log_dict(dictionary: Mapping[str, Any], artifact_file: str, run_id: str | None = None) -> str:
    """JSON, or YAML when ``artifact_file`` ends in .yaml/.yml (needs PyYAML)."""
    if artifact_file.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError as exc:
            raise InvalidInput(
                "log_dict to a .yaml file needs PyYAML (pip install pyyaml); or use .json"
            ) from exc
        data = yaml.safe_dump(dict(dictionary), sort_keys=False).encode()
    else:
        data = json.dumps(dictionary, indent=2, default=str).encode()
    return _service().log_bytes(_stored(_run_id(run_id)), artifact_file, data)


def log_figure(figure: Any, artifact_file: str, run_id: str | None = None) -> str:
    """A matplotlib figure (PNG, SVG, PDF by extension) or a plotly figure (.html or .json)."""
    buffer = io.BytesIO()
    module = type(figure).__module__
    if module.startswith("matplotlib"):
        figure.savefig(buffer, format=Path(artifact_file).suffix.lstrip(".") or "png")
    elif module.startswith("plotly"):
        if artifact_file.endswith(".html"):
            buffer.write(figure.to_html(include_plotlyjs="cdn").encode())
        elif artifact_file.endswith(".json"):
            buffer.write(figure.to_json().encode())
        else:
            raise InvalidInput("plotly figures are logged as .html or .json files")
    else:
        raise InvalidInput(
            f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}"
        )
    return _service().log_bytes(_stored(_run_id(run_id)), artifact_file, buffer.getvalue())


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> str:
    """A pandas DataFrame (or a dict of columns) stored as Parquet."""
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    if not artifact_file.endswith(".parquet"):
        raise InvalidInput(
            f"log_table writes Parquet: name the file *.parquet, not {artifact_file!r}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        frame.to_parquet(path, index=False)
        with path.open("rb") as fh:
            return _service().log_stream(_stored(_run_id(run_id)), artifact_file, fh).path


# -- reading -------------------------------------------------------------------------------
def get_run(run_id: str) -> Run:
    flush()
    return _service().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    flush()
    return _service().get_metric_history(run_id, key)


def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str = "",
    run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
    max_results: int = 100_000,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> Any:
    """Runs matching ``filter_string`` (MLflow's grammar), as a pandas DataFrame with MLflow's
    columns, or a list of Run with ``output_format="list"``. Filtering happens in SQL."""
    flush()
    service = _service()
    if search_all_experiments and not experiment_ids and not experiment_names:
        experiment_ids = [e.experiment_id for e in service.list_experiments(ViewType.ALL)]
    if not experiment_ids and not experiment_names:
        experiment_ids = [_current_experiment_id()]
    if output_format not in ("pandas", "list"):
        raise InvalidInput(f"output_format must be 'pandas' or 'list', got {output_format!r}")
    runs: list[Run] = []
    token: str | None = None
    while len(runs) < max_results:
        page, token = service.search_runs(
            experiment_ids,
            filter_string,
            order_by,
            min(max_results - len(runs), 50_000),
            run_view_type,
            token,
            experiment_names,
        )
        runs.extend(page)
        if token is None:
            break
    if output_format == "list":
        return runs
    from loopline.tracking.frames import runs_to_frame

    return runs_to_frame(runs)
