"""Tuning throughput: trials/s of ``ll.tune`` next to plain Optuna without tracking.

A trivial objective, ``(x - 2) ** 2`` over ``x`` in [-10, 10], so the figures measure the
per-trial machinery, not the work: Optuna's sampler (TPE, seeded) and storage, plus Loopline's
tracking (a child run per trial with its params, metric and state tag; the parent run with the
environment capture; the best-trial tag at the end). Every timing runs until ``tune`` returns,
i.e. until every value is stored. The workspace (created and migrated) and Optuna's storage are
set up before the timer starts. Each repetition uses a fresh directory and alternates the order
of the variants, so background load hits all alike.

Variants (``--only`` picks some):

- ``optuna-memory``: ``optuna.create_study().optimize(objective, n_trials)``, in-memory storage.
- ``tune-memory``: ``ll.tune(..., storage="memory")``, local executor, ``n_jobs=1``: the
  tracking overhead alone (same Optuna storage as the baseline).
- ``optuna-journal``: plain Optuna on a ``JournalFileBackend`` file (what ``ll.tune`` uses by
  default for a SQLite workspace, so a study can be resumed).
- ``tune-default``: ``ll.tune`` with its default, resumable storage.
- ``optuna-rdb``: plain Optuna on its RDB storage in a SQLite file, for reference.
- ``tune-ray``: ``ll.tune(..., executor="ray", n_jobs=2)`` on a local Ray started once before
  the repetitions (its start-up time is printed apart); needs ``pip install "loopline[ray]"``.

    python benchmarks/tuning_throughput.py [--trials 200] [--reps 5] [--ray-trials 100]
        [--rdb-trials 50] [--only optuna-memory tune-memory ...] [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import optuna

import loopline as ll
from loopline.pipelines.tuning import tune
from machine import describe, summary

VARIANTS = [
    "optuna-memory",
    "tune-memory",
    "optuna-journal",
    "tune-default",
    "optuna-rdb",
    "tune-ray",
]
RATIOS = [  # (label, Loopline variant, baseline)
    ("tracking overhead, same storage (memory)", "tune-memory", "optuna-memory"),
    ("tracking overhead, same storage (journal)", "tune-default", "optuna-journal"),
    ("ll.tune default vs plain Optuna in memory", "tune-default", "optuna-memory"),
]
SPACE = {"x": ("uniform", -10.0, 10.0)}


def objective(params: dict[str, float]) -> float:
    return (params["x"] - 2.0) ** 2


def optuna_objective(trial: optuna.Trial) -> float:
    return objective({"x": trial.suggest_float("x", -10.0, 10.0)})


def prepare(name: str, root: Path, trials: int) -> Callable[[], None]:
    """Set up one variant outside the timer (a workspace that exists and is migrated, an
    Optuna storage that is open), as a user's would be; return the timed call."""
    root.mkdir(parents=True)
    if name.startswith("optuna-"):
        journal = optuna.storages.journal
        storage = {
            "optuna-memory": None,
            "optuna-journal": journal.JournalStorage(
                journal.JournalFileBackend(str(root / "journal.log"))
            ),
            "optuna-rdb": optuna.storages.RDBStorage(f"sqlite:///{root / 'optuna.db'}"),
        }[name]

        def plain() -> None:
            study = optuna.create_study(storage=storage, sampler=optuna.samplers.TPESampler(seed=0))
            study.optimize(optuna_objective, n_trials=trials)
            assert len(study.trials) == trials

        return plain
    ll.use_workspace(root / "ws")
    ll.current_workspace().tracking.list_experiments()  # creates and migrates the database
    options = {
        "tune-memory": {"storage": "memory"},
        "tune-default": {},
        "tune-ray": {"executor": "ray", "n_jobs": 2},
    }[name]

    def tuned() -> None:
        result = tune(objective, SPACE, trials, "minimize", seed=0, **options)
        assert len(result.trials) == trials

    return tuned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--ray-trials", type=int, default=100)
    parser.add_argument("--rdb-trials", type=int, default=50, help="Optuna's RDB is slow")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", nargs="+", choices=VARIANTS, default=VARIANTS)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    variants = list(args.only)
    ray_start_s = None
    if "tune-ray" in variants:
        try:
            import ray
        except ImportError:
            print('tune-ray skipped: Ray is not installed (pip install "loopline[ray]")')
            variants.remove("tune-ray")
        else:
            started = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            ray_start_s = time.perf_counter() - started
    base = Path(args.dir or tempfile.mkdtemp(prefix="ll-tune-bench-"))
    trials_of = {"tune-ray": args.ray_trials, "optuna-rdb": args.rdb_trials}
    rates: dict[str, list[float]] = {v: [] for v in variants}
    try:
        for rep in range(args.reps):
            order = variants if rep % 2 == 0 else variants[::-1]
            for name in order:
                trials = trials_of.get(name, args.trials)
                timed = prepare(name, base / f"{rep}-{name}", trials)
                started = time.perf_counter()
                timed()
                rates[name].append(trials / (time.perf_counter() - started))
                ll.use_workspace(None)
    finally:
        if ray_start_s is not None:
            ray.shutdown()
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    result: dict[str, Any] = {
        "trials": args.trials,
        "reps": args.reps,
        "trials_per_s": {k: summary(v) for k, v in rates.items()},
        "ratios": {},
        "ray_start_s": ray_start_s,
        "versions": {p: version(p) for p in ("loopline", "optuna")},
        "env": describe(base.parent),
    }
    for label, ours, baseline in RATIOS:
        if rates.get(ours) and rates.get(baseline):
            ratio = (
                summary([1 / r for r in rates[ours]])["median"]
                / summary([1 / r for r in rates[baseline]])["median"]
            )
            result["ratios"][label] = ratio  # time per trial, ours / baseline
    if args.json:
        print(json.dumps(result, indent=2))
        return
    width = max(len(v) for v in variants)
    print(f"{'trials/s':{width}}  {'median':>8}  {'min':>8}  {'max':>8}  trials")
    for name in variants:
        s = result["trials_per_s"][name]
        n = trials_of.get(name, args.trials)
        print(f"{name:{width}}  {s['median']:8.1f}  {s['min']:8.1f}  {s['max']:8.1f}  {n}")
    for label, ratio in result["ratios"].items():
        print(f"{label}: {ratio:.2f}x time per trial (goal < 1.2x)")
    if ray_start_s is not None:
        print(f"local Ray start-up (not in the timings): {ray_start_s:.1f} s")
    print(json.dumps({**result["versions"], **result["env"]}))


if __name__ == "__main__":
    main()
