"""Hyperparameter tuning on Optuna where every trial is a tracked run (``ll.tune``).

The study is a parent run; each trial is a nested child run holding its params, the objective's
value and every ``trial.report`` as metric history. Optuna decides (sampler, pruner, study
storage); Loopline records. The driver keeps Optuna's ask/tell loop to itself and only ships
``params`` to where a trial runs (this thread, a thread pool, a process pool or Ray tasks), so one
loop serves every executor and the sampler always sees results in the order they arrive.

The study persists in Optuna's own storage under the workspace (see :func:`study_storage`), so a
study can be resumed by name, and its parent run is found again by the ``loopline.study`` tag.
"""

from __future__ import annotations

import functools
import inspect
import math
import multiprocessing
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from concurrent.futures.process import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import cloudpickle

from loopline.config import Settings, mask_uri
from loopline.errors import AlreadyExists, ConfigError, InvalidInput
from loopline.tracking import fluent
from loopline.tracking.validation import check_key

if TYPE_CHECKING:
    from loopline.tracking.service import TrackingService

__all__ = [
    "TAG_BEST",
    "TAG_STATE",
    "TAG_STUDY",
    "TAG_TRIAL",
    "Trial",
    "TrialResult",
    "TuneResult",
    "build_search_space",
    "study_storage",
    "tune",
]

TAG_STUDY = "loopline.study"
"""On the parent run: the study's name, how ``resume=True`` finds the run again."""
TAG_TRIAL = "loopline.trial"
"""On each child run: the Optuna trial number."""
TAG_STATE = "loopline.trial_state"
"""On each child run: COMPLETE, PRUNED or FAIL."""
TAG_BEST = "loopline.best_trial"
"""``true`` on the child run of the best trial (moved when a resumed study finds a better one)."""
TAG_ERROR = "loopline.error"
_BEST_RUN = "loopline.best_run_id"
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_MAX_ERROR = 4000

Objective = Callable[..., float]
TrialExecutor = Literal["local", "process", "ray"]


# -- optional dependencies --------------------------------------------------------------------
@functools.cache
def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise ConfigError(
            'hyperparameter tuning needs Optuna: pip install "loopline[tune]"'
        ) from exc
    # Every trial is a tracked run: Optuna's own line per trial (and per new study) on stderr
    # would only repeat it. Warnings still show. Once per process (hence the cache), so a
    # user who turns Optuna's logging back up keeps it.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError('executor="ray" needs Ray: pip install "loopline[ray]"') from exc
    return ray


# -- search space ------------------------------------------------------------------------------
def build_search_space(search_space: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna distributions from a plain description, each entry checked with errors naming its
    key, so a typo fails before the first trial rather than in trial 57.

    Entries: ``("uniform", lo, hi)``, ``("loguniform", lo, hi)``, ``("float", lo, hi)``,
    ``("int", lo, hi)`` (the last two take an options dict: ``{"log": True}`` or
    ``{"step": 0.5}``), ``("categorical", [choices])``, or an Optuna distribution object."""
    optuna = _optuna()
    dists = optuna.distributions
    if not isinstance(search_space, Mapping) or not search_space:
        raise InvalidInput("search_space must be a non-empty dict of name -> distribution")
    space: dict[str, Any] = {}
    for key, spec in search_space.items():
        check_key(key, "search_space")  # each name becomes a param key of the trial's run
        if isinstance(spec, dists.BaseDistribution):
            space[key] = spec
            continue
        where = f"search_space[{key!r}]"
        if not isinstance(spec, tuple | list) or not spec or not isinstance(spec[0], str):
            raise InvalidInput(
                f"{where}: expected a tuple such as ('uniform', 0.0, 1.0), ('int', 2, 8) or "
                f"('categorical', ['a', 'b']), got {spec!r}"
            )
        kind, args = spec[0].lower(), list(spec[1:])
        try:
            space[key] = _distribution(dists, kind, args)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc}") from None
        except (TypeError, ValueError) as exc:  # Optuna's own checks (low > high, log with 0)
            raise InvalidInput(f"{where}: {exc}") from None
    return space


def _distribution(dists: Any, kind: str, args: list[Any]) -> Any:
    if kind == "categorical":
        if len(args) != 1 or not isinstance(args[0], list | tuple) or not args[0]:
            raise InvalidInput("categorical takes one non-empty list of choices")
        for choice in args[0]:
            if choice is not None and not isinstance(choice, str | int | float | bool):
                raise InvalidInput(f"choice {choice!r} is not None, bool, int, float or str")
        return dists.CategoricalDistribution(list(args[0]))
    if kind not in ("uniform", "loguniform", "float", "int"):
        raise InvalidInput(
            f"unknown kind {kind!r}; use uniform, loguniform, float, int or categorical"
        )
    options: dict[str, Any] = {}
    if len(args) == 3 and isinstance(args[2], Mapping) and kind in ("float", "int"):
        options = dict(args.pop())
    if len(args) != 2:
        raise InvalidInput(f"{kind} takes (low, high), got {len(args)} values")
    unknown = set(options) - {"log", "step"}
    if unknown:
        raise InvalidInput(f"unknown options {sorted(unknown)}; use 'log' or 'step'")
    low, high = args
    number = int if kind == "int" else float
    for name, bound in (("low", low), ("high", high)):
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise InvalidInput(f"{name} must be a number, got {bound!r}")
        if number is int and not float(bound).is_integer():
            raise InvalidInput(f"{name} of an int range must be an integer, got {bound!r}")
    log = bool(options.get("log", kind == "loguniform"))
    step = options.get("step")
    if kind == "int" and step is not None and not float(step).is_integer():
        raise InvalidInput(f"the step of an int range must be an integer, got {step!r}")
    if kind == "int":
        return dists.IntDistribution(int(low), int(high), log=log, step=int(step or 1))
    return dists.FloatDistribution(float(low), float(high), log=log, step=step)


def _describe(dist: Any) -> str:
    """A short readable form for the parent run's params (``space.lr = float(1e-4, 0.1, log)``)."""
    name = type(dist).__name__
    if name == "CategoricalDistribution":
        return f"categorical({list(dist.choices)!r})"
    kind = "int" if name == "IntDistribution" else "float"
    extra = ", log" if dist.log else ""
    if getattr(dist, "step", None) not in (None, 1) or (kind == "float" and dist.step):
        extra += f", step={dist.step}"
    return f"{kind}({dist.low}, {dist.high}{extra})"


# -- sampler, pruner, storage ------------------------------------------------------------------
def _sampler(sampler: Any, seed: int | None, space: Mapping[str, Any]) -> Any:
    optuna = _optuna()
    if sampler is None or sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "grid":
        grid: dict[str, list[Any]] = {}
        for key, dist in space.items():
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                grid[key] = list(dist.choices)
            elif isinstance(dist, optuna.distributions.IntDistribution) and not dist.log:
                grid[key] = list(range(dist.low, dist.high + 1, dist.step))
            else:
                raise InvalidInput(
                    f"search_space[{key!r}]: grid sampling needs a finite set of values; "
                    "give it as ('categorical', [...]) or a non-log ('int', low, high)"
                )
        return optuna.samplers.GridSampler(grid, seed=seed)
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    raise InvalidInput(f"sampler must be 'tpe', 'random', 'grid' or an Optuna sampler: {sampler!r}")


def _pruner(pruner: Any) -> Any:
    optuna = _optuna()
    named = {
        None: optuna.pruners.NopPruner,
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
    }
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if isinstance(pruner, str | None) and pruner in named:
        return named[pruner]()
    raise InvalidInput(f"pruner must be 'median', 'hyperband' or an Optuna pruner: {pruner!r}")


@dataclass(frozen=True)
class _StorageSpec:
    """How a worker process reopens the study's storage: ``journal`` (a file path), ``url`` (an
    RDB URL) or ``memory``/``object`` (not reachable from another process)."""

    kind: Literal["journal", "url", "memory", "object"]
    location: str = ""


def study_storage(settings: Settings, storage: Any = None) -> tuple[Any, _StorageSpec]:
    """The Optuna storage a study lives in, and how other processes reopen it.

    By default: for a SQLite workspace, Optuna's journal file ``<state_dir>/optuna-journal.log``
    (file-locked, so processes on this machine share it; measured 4-5x faster per trial
    than Optuna's RDB storage on a SQLite file); for a PostgreSQL workspace, Optuna's RDB tables
    in the workspace's own database, which every machine of a Ray cluster can reach. ``storage``
    may instead be an Optuna storage URL or object, or ``"memory"`` (fastest, not resumable)."""
    optuna = _optuna()
    if storage == "memory":
        return optuna.storages.InMemoryStorage(), _StorageSpec("memory")
    if isinstance(storage, str):
        return optuna.storages.RDBStorage(storage), _StorageSpec("url", storage)
    if storage is not None:
        return storage, _StorageSpec("object")
    uri = settings.store_uri
    if uri.startswith(("postgresql", "postgres")):
        return _cached_rdb(uri), _StorageSpec("url", uri)
    path = settings.state_dir / "optuna-journal.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return _journal(str(path)), _StorageSpec("journal", str(path))


_storages: dict[str, Any] = {}  # RDBStorage checks its schema on creation: one per process


def _cached_rdb(url: str) -> Any:
    if url not in _storages:
        _storages[url] = _optuna().storages.RDBStorage(url)
    return _storages[url]


def _journal(path: str) -> Any:
    journal = _optuna().storages.journal
    return journal.JournalStorage(journal.JournalFileBackend(path))


def _reopen(spec: _StorageSpec) -> Any | None:
    """The study's storage in a worker process, kept for the process's next trials (a journal
    replays the whole file when opened, then only what was appended)."""
    if spec.kind == "journal":
        key = f"journal:{spec.location}"
        if key not in _storages:
            _storages[key] = _journal(spec.location)
        return _storages[key]
    if spec.kind == "url":
        return _cached_rdb(spec.location)
    return None


# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrialResult:
    number: int
    params: dict[str, Any]
    value: float | None
    state: str
    """COMPLETE, PRUNED, FAIL (or RUNNING for a trial a crashed session left behind)."""
    run_id: str | None
    duration_s: float | None


@dataclass(frozen=True)
class TuneResult:
    best_params: dict[str, Any] | None
    """``None`` when no trial completed."""
    best_value: float | None
    best_run_id: str | None
    parent_run_id: str
    study_name: str
    trials: list[TrialResult] = field(default_factory=list)
    """Every trial of the study, earlier sessions of a resumed study included."""


# -- one trial ---------------------------------------------------------------------------------
class Trial:
    """What the objective gets next to ``params``: Optuna's ``report``/``should_prune``, which
    also log each reported value as the metric's history on the trial's run."""

    def __init__(self, number: int, params: dict[str, Any], run_id: str, metric: str, opt: Any):
        self.number = number
        self.params = params
        self.run_id = run_id
        self.optuna = opt
        """The Optuna trial, or ``None`` in a worker process that cannot reach the study's
        storage (an in-memory study): there reports are kept and pruning never triggers."""
        self._metric = metric
        self.reports: list[tuple[int, float, int]] = []

    def report(self, value: float, step: int) -> None:
        value = float(value)
        timestamp = time.time_ns() // 1_000_000
        if self.optuna is not None:
            self.optuna.report(value, step)
        self.reports.append((int(step), value, timestamp))
        fluent.log_metric(self._metric, value, step=step, timestamp=timestamp, run_id=self.run_id)

    def should_prune(self) -> bool:
        return bool(self.optuna.should_prune()) if self.optuna is not None else False

    def __repr__(self) -> str:
        return f"<Trial {self.number} {self.params!r}>"


@dataclass(frozen=True)
class _TrialSpec:
    number: int
    trial_id: int
    params: dict[str, Any]
    metric: str
    parent_run_id: str
    experiment_id: str
    with_trial: bool
    """Call ``objective(params, trial)``, else ``objective(params)`` (decided once per study)."""


@dataclass
class _Outcome:
    state: str
    value: float | None
    run_id: str
    duration_s: float
    error: str | None = None
    reports: list[tuple[int, float]] = field(default_factory=list)
    detached: bool = False


class _Failed(Exception):
    """Ends a trial's run as FAILED through the run's own context manager."""


def _takes_trial(objective: Objective) -> bool:
    try:
        signature = inspect.signature(objective)
    except (TypeError, ValueError):
        return True
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)


def _as_value(result: Any) -> float:
    if isinstance(result, bool) or not isinstance(result, int | float):
        try:
            result = float(result)  # numpy scalars, 0-d arrays
        except (TypeError, ValueError):
            raise InvalidInput(f"the objective returned {result!r}, not a number") from None
    value = float(result)
    if math.isnan(value):
        raise InvalidInput("the objective returned NaN")
    return value


def _run_trial(spec: _TrialSpec, objective: Objective, opt: Any) -> _Outcome:
    """Run one trial inside its own child run: params in, value (or the error) out."""
    optuna = _optuna()
    started = time.perf_counter()
    outcome = _Outcome("FAIL", None, "", 0.0, detached=opt is None)
    try:
        # Queued, not created: the run is written with the next batch of the background
        # writer, so a trial costs no transaction (the parent captured the environment).
        with fluent.start_queued_run(
            spec.experiment_id,
            f"trial-{spec.number}",
            spec.parent_run_id,
            tags={TAG_TRIAL: spec.number},
        ) as run:
            outcome.run_id = run.run_id
            fluent.log_params(spec.params, run_id=run.run_id)
            trial = Trial(spec.number, dict(spec.params), run.run_id, spec.metric, opt)
            try:
                raw = objective(spec.params, trial) if spec.with_trial else objective(spec.params)
                outcome.value, outcome.state = _as_value(raw), "COMPLETE"
            except optuna.TrialPruned:
                outcome.state = "PRUNED"
            except Exception as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
            outcome.reports = [(step, value) for step, value, _ in trial.reports]
            tags = {TAG_STATE: outcome.state}
            if outcome.error is not None:
                tags[TAG_ERROR] = outcome.error
            fluent.set_tags(tags, run_id=run.run_id)
            if outcome.value is not None:
                _log_final(spec.metric, outcome.value, trial.reports, run.run_id)
            if outcome.state == "FAIL":
                raise _Failed
    except _Failed:
        pass
    outcome.duration_s = time.perf_counter() - started
    return outcome


def _log_final(metric: str, value: float, reports: list[tuple[int, float, int]], run: str) -> None:
    """The returned value becomes the metric's latest point: at the last reported step, stamped
    after it, and not repeated when it equals the last report (the usual case)."""
    if not reports:
        fluent.log_metric(metric, value, step=0, run_id=run)
        return
    step, last, stamp = max(reports)
    if last != value:
        now = max(time.time_ns() // 1_000_000, stamp + 1)
        fluent.log_metric(metric, value, step=step, timestamp=now, run_id=run)


@dataclass(frozen=True)
class _RemoteTrial:
    """Everything a process-pool or Ray worker needs to run one trial on its own."""

    spec: _TrialSpec
    objective: Objective
    settings: Settings
    storage: _StorageSpec
    study_name: str
    pruner: Any


_worker_settings: Settings | None = None


def _run_remote(task: _RemoteTrial) -> _Outcome:
    """Entry point in a worker process: open the driver's workspace, reach the study's storage
    when another process can (so pruning works), run the trial."""
    global _worker_settings
    from loopline.api import use_workspace
    from loopline.workspace import Workspace

    if _worker_settings != task.settings:
        use_workspace(Workspace(task.settings))
        _worker_settings = task.settings
    opt = None
    storage = _reopen(task.storage)
    if storage is not None:
        optuna = _optuna()
        study = optuna.load_study(
            study_name=task.study_name,
            storage=storage,
            sampler=optuna.samplers.RandomSampler(),  # params are fixed; never sampled here
            pruner=task.pruner,
        )
        opt = optuna.trial.Trial(study, task.spec.trial_id)
    outcome = _run_trial(task.spec, task.objective, opt)
    fluent.flush()
    return outcome


def _run_pickled(task: bytes) -> _Outcome:
    return _run_remote(cloudpickle.loads(task))


# -- executors ---------------------------------------------------------------------------------
class _Inline:
    """n_jobs=1 on the local executor: the trial runs right here, no pool to pay for."""

    def submit(self, fn: Callable[..., _Outcome], *args: Any) -> Future[_Outcome]:
        future: Future[_Outcome] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


@contextmanager
def _executor(kind: str, n_jobs: int, ray_address: str | None) -> Iterator[tuple[Any, int]]:
    """(pool, concurrency) for ``kind``; the pool has ``submit(fn, *args) -> Future``."""
    if kind == "local":
        jobs = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
        pool: Any = _Inline() if jobs == 1 else ThreadPoolExecutor(jobs, "loopline-trial")
    elif kind == "process":
        jobs = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
        # spawn, not fork: the driver holds database connections and a writer thread.
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
    elif kind == "ray":
        ray = _ray()
        started = not ray.is_initialized()
        if started:
            options: dict[str, Any] = {"include_dashboard": False}
            if ray_address is None and n_jobs > 0:
                options["num_cpus"] = n_jobs
            ray.init(address=ray_address, **options)
        jobs = int(ray.cluster_resources().get("CPU", 1)) if n_jobs == -1 else n_jobs
        pool = _RayPool(ray)
        try:
            yield pool, jobs
        finally:
            if started:
                ray.shutdown()
        return
    else:
        raise InvalidInput(f"executor must be 'local', 'process' or 'ray', got {kind!r}")
    try:
        yield pool, jobs
    finally:
        pool.shutdown(wait=True)


class _RayPool:
    """``submit`` for Ray: one task (one CPU) per trial; Ray's ObjectRef becomes a Future."""

    def __init__(self, ray: Any) -> None:
        self._ray = ray
        self._remote: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., _Outcome], *args: Any) -> Future[_Outcome]:
        if fn not in self._remote:
            self._remote[fn] = self._ray.remote(num_cpus=1)(fn)
        return self._remote[fn].remote(*args).future()  # type: ignore[no-any-return]


# -- the study's parent run --------------------------------------------------------------------
def _find_study_run(study_name: str) -> Any | None:
    runs = fluent.search_runs(
        filter_string=f"tags.`{TAG_STUDY}` = '{study_name}'",
        search_all_experiments=True,
        output_format="list",
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    return runs[0] if runs else None


def _tracking() -> TrackingService:
    from loopline.api import current_workspace

    return current_workspace().tracking


def _experiment_id(experiment: str | None) -> str | None:
    """``experiment`` by name (created if new); else the active run's, so a study run inside a
    pipeline step stays with its step; else the current experiment."""
    if experiment is not None:
        return _tracking().get_or_create_experiment(experiment).experiment_id
    active = fluent.active_run()
    return active.info.experiment_id if active is not None else None


def _tell(study: Any, trial: Any, outcome: _Outcome) -> None:
    optuna = _optuna()
    if outcome.detached:  # the worker could not reach the study: replay its reports here
        for step, value in outcome.reports:
            trial.report(value, step)
    state = optuna.trial.TrialState
    try:
        if outcome.state == "COMPLETE":
            study.tell(trial, outcome.value)
        elif outcome.state == "PRUNED":
            study.tell(trial, state=state.PRUNED)
        else:
            study.tell(trial, state=state.FAIL)
    except RuntimeError as exc:
        # A grid sampler calls study.stop() after the grid's last point, which Optuna only
        # allows inside optimize(); the trial's result is already stored by then (tell stores
        # it in a `finally`), and _cap_to_grid already stops asking.
        if "Study.stop" not in str(exc):
            raise


def tune(
    objective: Objective,
    search_space: Mapping[str, Any],
    n_trials: int,
    direction: Literal["maximize", "minimize"] = "maximize",
    *,
    metric: str = "objective",
    study_name: str | None = None,
    resume: bool = False,
    n_jobs: int = 1,
    executor: TrialExecutor = "local",
    ray_address: str | None = None,
    pruner: Any = None,
    sampler: Any = None,
    seed: int | None = None,
    timeout: float | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    storage: Any = None,
) -> TuneResult:
    """Run ``n_trials`` more trials of ``objective(params, trial)`` (or ``objective(params)``)
    over ``search_space`` and return the best, every trial recorded as a child run.

    ``executor="local"`` runs trials here (``n_jobs > 1``: in threads, which only helps
    objectives that release the GIL: NumPy, scikit-learn, LightGBM, PyTorch);
    ``"process"`` in ``n_jobs`` spawned processes (CPU-bound pure-Python objectives; the
    objective travels with cloudpickle); ``"ray"`` as Ray tasks, on ``ray_address`` or a local
    Ray started (and stopped) here. ``n_jobs=-1`` means one per CPU. Trials fail alone: an
    exception marks the trial FAIL and keeps its error; the study goes on. ``study_name`` with
    ``resume=True`` continues a stored study in the same parent run (where studies are stored:
    :func:`study_storage`). Called while a run is active (inside a pipeline step), the study's
    run nests under it."""
    if direction not in ("maximize", "minimize"):
        raise InvalidInput(
            f"direction must be 'maximize' or 'minimize', got {direction!r} "
            "(multi-objective studies are not supported yet)"
        )
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0:
        raise InvalidInput(f"n_trials must be a non-negative integer, got {n_trials!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or (n_jobs < 1 and n_jobs != -1):
        raise InvalidInput(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    if executor not in ("local", "process", "ray"):
        raise InvalidInput(f"executor must be 'local', 'process' or 'ray', got {executor!r}")
    check_key(metric, "metric")
    study_name = study_name or f"tune-{uuid.uuid4().hex[:12]}"
    if not _STUDY_NAME.match(study_name):
        raise InvalidInput(
            f"study_name {study_name!r}: use letters, digits, '_', '.' and '-' (at most 200)"
        )
    space = build_search_space(search_space)
    sampler_obj, pruner_obj = _sampler(sampler, seed, space), _pruner(pruner)
    from loopline.api import current_workspace

    settings = current_workspace().settings
    storage_obj, spec = study_storage(settings, storage)
    if resume and spec.kind == "memory":
        raise InvalidInput('an in-memory study (storage="memory") cannot be resumed')
    study = _open_study(storage_obj, sampler_obj, pruner_obj, study_name, direction, resume)
    definition = {
        **{f"space.{k}": _describe(d) for k, d in space.items()},
        "direction": direction,
        "metric": metric,
    }
    existing = _find_study_run(study_name) if resume else None
    parent = _open_parent(existing, definition, study_name, experiment, run_name)
    with parent:
        fluent.set_tags(
            {
                "loopline.tune.n_trials": n_trials,
                "loopline.tune.n_jobs": n_jobs,
                "loopline.tune.executor": executor,
                "loopline.tune.sampler": type(sampler_obj).__name__,
                "loopline.tune.pruner": type(pruner_obj).__name__,
                "loopline.tune.seed": "" if seed is None else seed,
                "loopline.optuna_storage": mask_uri(spec.location) or spec.kind,
            },
            run_id=parent.run_id,
        )

        with_trial = _takes_trial(objective)

        def make_task(trial: Any) -> tuple[Callable[..., _Outcome], tuple[Any, ...]]:
            trial_spec = _TrialSpec(
                number=trial.number,
                trial_id=trial._trial_id,  # what optuna.trial.Trial(study, id) reopens it by
                params=dict(trial.params),
                metric=metric,
                parent_run_id=parent.run_id,
                experiment_id=parent.info.experiment_id,
                with_trial=with_trial,
            )
            if executor == "local":
                return _run_trial, (trial_spec, objective, trial)
            task = _RemoteTrial(trial_spec, objective, settings, spec, study_name, pruner_obj)
            if executor == "process":  # cloudpickle: lambdas and closures travel by value
                return _run_pickled, (cloudpickle.dumps(task),)
            return _run_remote, (task,)

        deadline = None if timeout is None else time.monotonic() + timeout
        n_trials = _cap_to_grid(study, sampler_obj, n_trials)
        with _executor(executor, n_jobs, ray_address) as (pool, jobs):
            run_ids = _drive(study, space, pool, jobs, n_trials, deadline, make_task)
        if existing is not None:  # trials of earlier sessions: their runs' loopline.trial tags
            run_ids = {**_trial_runs(parent.run_id), **run_ids}
        return _finish(study, parent.run_id, metric, existing, run_ids)


def _open_study(
    storage: Any, sampler: Any, pruner: Any, name: str, direction: str, resume: bool
) -> Any:
    optuna = _optuna()
    try:
        return optuna.create_study(
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            study_name=name,
            direction=direction,
            load_if_exists=resume,
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise AlreadyExists(
            f"study {name!r} already exists; pass resume=True to continue it "
            "or choose another study_name"
        ) from None
    except ValueError as exc:  # e.g. resuming with another direction
        raise InvalidInput(f"study {name!r}: {exc}") from None


def _open_parent(
    existing: Any | None,
    definition: Mapping[str, Any],
    study_name: str,
    experiment: str | None,
    run_name: str | None,
) -> fluent.ActiveRun:
    """The study's run: the one a resumed study had (its definition must not have changed),
    else a new one; nested under the active run if there is one."""
    nested = fluent.active_run() is not None
    if existing is not None:
        for key, value in definition.items():
            old = existing.params.get(key)
            if old is not None and old != str(value):
                raise InvalidInput(
                    f"study {study_name!r} was created with {key}={old!r}, not {value!r}; "
                    "keep the study's definition or start a new study_name"
                )
        parent = fluent.start_run(run_id=existing.info.run_id, nested=nested)
    else:
        parent = fluent.start_run(
            run_name=run_name or study_name,
            experiment_id=_experiment_id(experiment),
            nested=nested,
            tags={TAG_STUDY: study_name},
        )
    known = existing.params if existing is not None else {}
    fluent.log_params({k: v for k, v in definition.items() if k not in known}, run_id=parent.run_id)
    return parent


def _drive(
    study: Any,
    space: Mapping[str, Any],
    pool: Any,
    jobs: int,
    n_trials: int,
    deadline: float | None,
    make_task: Callable[[Any], tuple[Callable[..., _Outcome], tuple[Any, ...]]],
) -> dict[int, str]:
    """Optuna's ask/tell loop with at most ``jobs`` trials in flight: ask when a slot frees,
    tell as results arrive, so the sampler always knows every finished trial. On an error
    (Ctrl-C, a tracking failure) the trials still in flight are told FAIL, not left RUNNING.
    Returns each trial's run id by trial number."""
    optuna = _optuna()
    in_flight: dict[Future[_Outcome], Any] = {}
    run_ids: dict[int, str] = {}
    launched = 0
    try:
        while True:
            while (
                launched < n_trials
                and len(in_flight) < jobs
                and (deadline is None or time.monotonic() < deadline)
            ):
                trial = study.ask(space)
                fn, args = make_task(trial)
                in_flight[pool.submit(fn, *args)] = trial
                launched += 1
            if not in_flight:
                return run_ids
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in done:
                trial, outcome = in_flight.pop(future), future.result()
                _tell(study, trial, outcome)
                if outcome.run_id:
                    run_ids[trial.number] = outcome.run_id
    except BaseException:
        for trial in in_flight.values():
            study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        raise


def _cap_to_grid(study: Any, sampler: Any, n_trials: int) -> int:
    """A grid sampler asked past its grid samples points again; stop at the grid's end."""
    optuna = _optuna()
    if not isinstance(sampler, optuna.samplers.GridSampler):
        return n_trials
    size = math.prod(len(v) for v in sampler._search_space.values())
    finished = sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())
    return max(0, min(n_trials, size - finished))


def _trial_runs(parent_id: str) -> dict[int, str]:
    """Trial number -> run id for the study's child runs. Kept on the runs (the
    ``loopline.trial`` tag), not in Optuna: a user attribute there costs every trial one more
    fsync'd journal write."""
    runs = fluent.search_runs(
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'",
        search_all_experiments=True,
        output_format="list",
    )
    return {int(r.tags[TAG_TRIAL]): r.info.run_id for r in runs if TAG_TRIAL in r.tags}


def _finish(
    study: Any, parent_id: str, metric: str, existing: Any | None, run_ids: Mapping[int, str]
) -> TuneResult:
    """Tag the best trial's run (untagging an earlier best of a resumed study) and give the
    parent ``best_<metric>`` and ``best_trial`` metrics and ``best_<param>`` tags. Best params
    are tags, not params: params never change, and a resumed study may find a better trial."""
    optuna = _optuna()
    complete = optuna.trial.TrialState.COMPLETE
    trials = study.get_trials(deepcopy=False)
    results = [
        TrialResult(
            number=t.number,
            params=dict(t.params),
            value=t.value if t.state == complete else None,
            state=t.state.name,
            run_id=run_ids.get(t.number),
            duration_s=t.duration.total_seconds() if t.duration is not None else None,
        )
        for t in trials
    ]
    if not any(t.state == complete for t in trials):
        warnings.warn(
            f"study {study.study_name!r}: no trial completed; see the {TAG_ERROR} tag of the "
            "failed trials' runs",
            stacklevel=3,
        )
        return TuneResult(None, None, None, parent_id, study.study_name, results)
    best = study.best_trial
    best_run = run_ids.get(best.number)
    previous = existing.tags.get(_BEST_RUN) if existing is not None else None
    fluent.flush()
    if previous and previous != best_run:
        _tracking().delete_tag(previous, TAG_BEST)
    if best_run:
        fluent.set_tag(TAG_BEST, "true", run_id=best_run)
    fluent.log_metrics({f"best_{metric}": best.value, "best_trial": best.number}, run_id=parent_id)
    fluent.set_tags(
        {**{f"best_{k}": v for k, v in best.params.items()}, _BEST_RUN: best_run or ""},
        run_id=parent_id,
    )
    return TuneResult(dict(best.params), best.value, best_run, parent_id, study.study_name, results)
