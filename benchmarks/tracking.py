"""Experiment tracking next to MLflow: both on SQLite files, same machine, same run.

Each tool writes its own SQLite database file (MLflow through ``sqlite:///`` and its SQLAlchemy
store, never a file store) in one fresh directory. Repetitions alternate between the two tools
so background load hits both alike. Loopline runs use ``capture=False`` (no git/environment
capture), so both sides do the same work.

1. ``log_metric`` calls/s from one thread, increasing step. Loopline: the caller-side rate
   (calls returned; values are queued for the background writer) and the end-to-end rate
   including ``ll.flush()`` (every value stored). MLflow: its default synchronous
   ``log_metric``, and ``synchronous=False`` (its async logging) with
   ``mlflow.flush_async_logging()``, for reference.
2. Metric points/s with batch logging, 1000-point batches (MLflow's per-call limit): Loopline
   ``tracking.log_batch`` vs ``MlflowClient().log_batch``. Building the batch objects is inside
   the timer on both sides (Loopline validates in ``make_metric``, MLflow in ``log_batch``).
3. ``search_runs`` over N runs (3 params, 3 metrics, 3 tags each; identical data on both sides)
   filtering on one metric and one param: p50/p95 (wall clock, and CPU time of this process)
   over 20 distinct queries, at the client level (a list of runs), as a pandas DataFrame, and
   as a first page (``max_results=100``). Row counts must agree with each other and with the
   count computed from the seeded data. Seeding: the first ``--api-runs`` runs go through each
   tool's API (create_run + log_batch, timed); the rest are bulk-inserted in one transaction by
   copying every column of the rows that tool wrote for one of those runs (the fastest bulk
   path; creating 10k MLflow runs through its API took 3-12 minutes here, depending on load),
   and one copy is read back through each API to check it.
4. Peak RSS growth of a fresh process that logs 1,000,000 points through ``ll.log_metric`` and
   flushes, above its RSS after import and ``start_run``: VmHWM (reset to the current RSS at
   that point through /proc/self/clear_refs) minus that baseline. MLflow's for comparison,
   through ``log_batch`` in 1000-point batches.

    python benchmarks/tracking.py [--reps 3] [--calls 20000] [--mlflow-calls 1000]
        [--batch-points 50000] [--runs 10000] [--api-runs 200] [--memory-points 1000000]
        [--mlflow-memory-points 1000000] [--only log_metric log_batch search_runs memory]
        [--dir DIR] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

from machine import MiB, describe, summary

# MLflow 3 sends usage telemetry from a background thread unless told not to; this machine has
# no network, and the thread would only add noise.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

BATCH = 1000  # MLflow's limit of metrics per log_batch call
QUERIES = 20
LRS = ("0.001", "0.01", "0.1")
GOALS = {
    "log_metric": "Loopline end-to-end >= 50x MLflow log_metric",
    "log_batch": "Loopline >= 10x MLflow log_batch",
    "search_runs": "Loopline p50 < 50 ms and >= 10x faster than MLflow",
    "memory": "Loopline peak RSS growth < 100 MB for 1,000,000 points",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def quiet_mlflow() -> None:
    import mlflow  # noqa: F401  (its import sets its loggers' levels; override them after)

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rss_bytes() -> int:
    """Current resident set size (VmRSS)."""
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size of this process image (VmHWM).

    Not ``ru_maxrss``: Linux carries it over from the forked parent through ``exec``, so a child
    of a big parent reports the parent's size (seen here: ~260 MiB of phantom growth).
    """
    return _status_kib("VmHWM") * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not permitted."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def count_rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def percentile(samples: list[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def loopline_db(workspace: Any) -> Path:
    uri = workspace.tracking.store.db.uri
    if not uri.startswith("sqlite:///"):
        raise SystemExit(f"Loopline store is {uri}, not SQLite: unset LOOPLINE_STORE_URI")
    return Path(uri.removeprefix("sqlite:///"))


# -- 1. log_metric ---------------------------------------------------------------------------
def bench_log_metric(root: Path, reps: int, n_ll: int, n_ml: int) -> dict[str, Any]:
    import mlflow

    import loopline as ll

    ll.use_workspace(root / "ll-log-metric")
    ll.set_experiment("log_metric")
    mlflow.set_tracking_uri(sqlite_uri(root / "mlflow-log-metric.db"))
    mlflow.set_experiment("log_metric")
    rates: dict[str, list[float]] = {
        "loopline_caller": [],
        "loopline_end_to_end": [],
        "mlflow_sync": [],
        "mlflow_async_caller": [],
        "mlflow_async_end_to_end": [],
    }
    stored: dict[str, int] = {}
    for rep in range(reps):
        log(f"  log_metric rep {rep + 1}/{reps}")
        with ll.start_run(capture=False) as run:
            for i in range(200):
                ll.log_metric("warmup", i, step=i)
            ll.flush()
            t0 = time.perf_counter()
            for i in range(n_ll):
                ll.log_metric("loss", i * 0.001, step=i)
            t1 = time.perf_counter()
            ll.flush()
            t2 = time.perf_counter()
        rates["loopline_caller"].append(n_ll / (t1 - t0))
        rates["loopline_end_to_end"].append(n_ll / (t2 - t0))
        stored["loopline"] = len(ll.get_metric_history(run.run_id, "loss"))

        with mlflow.start_run() as mrun:
            for i in range(20):
                mlflow.log_metric("warmup", i, step=i)
            t0 = time.perf_counter()
            for i in range(n_ml):
                mlflow.log_metric("loss", i * 0.001, step=i)
            t1 = time.perf_counter()
        rates["mlflow_sync"].append(n_ml / (t1 - t0))
        client = mlflow.MlflowClient()
        stored["mlflow_sync"] = len(client.get_metric_history(mrun.info.run_id, "loss"))

        with mlflow.start_run() as mrun:
            for i in range(20):
                mlflow.log_metric("warmup", i, step=i, synchronous=False)
            mlflow.flush_async_logging()
            t0 = time.perf_counter()
            for i in range(n_ml):
                mlflow.log_metric("loss", i * 0.001, step=i, synchronous=False)
            t1 = time.perf_counter()
            mlflow.flush_async_logging()
            t2 = time.perf_counter()
        rates["mlflow_async_caller"].append(n_ml / (t1 - t0))
        rates["mlflow_async_end_to_end"].append(n_ml / (t2 - t0))
        stored["mlflow_async"] = len(client.get_metric_history(mrun.info.run_id, "loss"))
    expected = {"loopline": n_ll, "mlflow_sync": n_ml, "mlflow_async": n_ml}
    if stored != expected:
        raise SystemExit(f"log_metric: stored point counts {stored} != {expected}")
    ll.use_workspace(None)
    return {
        "calls": {"loopline": n_ll, "mlflow": n_ml},
        "reps": reps,
        "calls_per_s": {k: summary(v) for k, v in rates.items()},
        "stored_points_checked": stored,
    }


# -- 2. log_batch ----------------------------------------------------------------------------
def batch_points(batch: int, keys: int = 10) -> Iterator[tuple[str, float, int]]:
    """One 1000-point batch: ``keys`` keys x 100 steps, steps increasing across batches."""
    per_key = BATCH // keys
    for s in range(per_key):
        step = batch * per_key + s
        for k in range(keys):
            yield f"metric_{k}", (step * 7 + k) % 1000 / 1000, step


def bench_log_batch(root: Path, reps: int, points: int) -> dict[str, Any]:
    import mlflow
    from mlflow.entities import Metric as MlflowMetric

    import loopline as ll
    from loopline.tracking.validation import make_metric

    ll.use_workspace(root / "ll-log-batch")
    tracking = ll.current_workspace().tracking
    ll_exp = tracking.get_or_create_experiment("log_batch").experiment_id
    mlflow.set_tracking_uri(sqlite_uri(root / "mlflow-log-batch.db"))
    client = mlflow.MlflowClient()
    ml_exp = client.create_experiment("log_batch")
    batches = points // BATCH
    rates: dict[str, list[float]] = {"loopline": [], "mlflow": []}
    stored: dict[str, int] = {}
    for rep in range(reps):
        log(f"  log_batch rep {rep + 1}/{reps}")
        run_id = tracking.create_run(ll_exp).info.run_id
        t0 = time.perf_counter()
        for b in range(batches):
            ts = now_ms()
            metrics = [make_metric(k, v, s, ts) for k, v, s in batch_points(b)]
            tracking.log_batch(run_id, metrics=metrics)
        rates["loopline"].append(batches * BATCH / (time.perf_counter() - t0))
        stored["loopline"] = len(tracking.get_metric_history(run_id, "metric_0"))

        ml_run_id = client.create_run(ml_exp).info.run_id
        t0 = time.perf_counter()
        for b in range(batches):
            ts = now_ms()
            ml_metrics = [MlflowMetric(k, v, ts, s) for k, v, s in batch_points(b)]
            client.log_batch(ml_run_id, metrics=ml_metrics)
        rates["mlflow"].append(batches * BATCH / (time.perf_counter() - t0))
        stored["mlflow"] = len(client.get_metric_history(ml_run_id, "metric_0"))
    per_key = batches * BATCH // 10
    if stored != {"loopline": per_key, "mlflow": per_key}:
        raise SystemExit(f"log_batch: stored points of metric_0 {stored}, expected {per_key}")
    ll.use_workspace(None)
    return {
        "points": batches * BATCH,
        "batch_size": BATCH,
        "reps": reps,
        "points_per_s": {k: summary(v) for k, v in rates.items()},
    }


# -- 3. search_runs --------------------------------------------------------------------------
def seed_data(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        acc = round(rng.random(), 4)
        rows.append(
            {
                "name": f"run-{i:05d}",
                "params": {
                    "lr": rng.choice(LRS),
                    "batch_size": rng.choice(("16", "32", "64", "128")),
                    "optimizer": rng.choice(("adam", "adamw", "sgd")),
                },
                "metrics": {
                    "acc": acc,
                    "loss": round(1 - acc + rng.random() * 0.1, 4),
                    "f1": round(acc * rng.uniform(0.8, 1.0), 4),
                },
                "tags": {
                    "team": rng.choice(("vision", "nlp", "speech")),
                    "env": rng.choice(("dev", "prod")),
                    "note": f"seeded run {i}",
                },
            }
        )
    return rows


def queries() -> list[tuple[str, float, str]]:
    """(filter, threshold, lr): thresholds spread over (0, 1) so result sizes vary."""
    out = []
    for q in range(QUERIES):
        threshold = round(0.04 + q * 0.048, 3)
        lr = LRS[q % len(LRS)]
        out.append((f"metrics.acc > {threshold} and params.lr = '{lr}'", threshold, lr))
    return out


SEED_TABLES = ("runs", "tags", "params", "metrics", "latest_metrics", "run_summaries")
"""Copied where they exist (``run_summaries`` is Loopline's per-run search summary)."""


def clone_runs(db: Path, id_col: str, name_col: str, template: str, rows: list[dict]) -> str:
    """Bulk-insert one run per row, in one transaction, by copying every column of the rows
    the tool itself wrote for ``template`` (a run made through its API) in each table,
    replacing the run id, name, start time and the values of params, metrics and tags.
    Returns the last new run id."""
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        templates = {}
        for table in (t for t in SEED_TABLES if t in present):
            cur = con.execute(f'SELECT * FROM {table} WHERE "{id_col}" = ?', (template,))
            cols = [d[0] for d in cur.description]
            templates[table] = (cols, [dict(zip(cols, r, strict=True)) for r in cur.fetchall()])
        base = templates["runs"][1][0]["start_time"]
        out: dict[str, list[tuple[Any, ...]]] = {table: [] for table in templates}
        run_id = template
        for i, row in enumerate(rows):
            run_id = uuid.uuid4().hex
            values = {
                "params": row["params"],
                "metrics": row["metrics"],
                "latest_metrics": row["metrics"],
                "tags": {**row["tags"], "mlflow.runName": row["name"]},
            }
            for table, (cols, template_rows) in templates.items():
                for old in template_rows:
                    new = {**old, id_col: run_id}
                    if table == "runs":
                        new[name_col] = row["name"]
                        new["start_time"] = base + 1 + i
                        new["artifact_uri"] = old["artifact_uri"].replace(template, run_id)
                    elif table == "run_summaries":
                        doc = json.loads(old["data"])
                        doc["p"].update(values["params"])
                        doc["m"].update(values["latest_metrics"])
                        doc["t"].update(values["tags"])
                        new["data"] = json.dumps(doc)
                    else:
                        new["value"] = values[table].get(old["key"], old["value"])
                    out[table].append(tuple(new[c] for c in cols))
        for table, (cols, _) in templates.items():
            names = ", ".join(f'"{c}"' for c in cols)
            marks = ", ".join("?" * len(cols))
            con.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", out[table])
        con.execute("COMMIT")
    finally:
        con.close()
    return run_id


def check_seeded(side: str, params: dict, metrics: dict, tags: dict, row: dict) -> None:
    want_tags = {**row["tags"], "mlflow.runName": row["name"]}
    if (
        params != row["params"]
        or metrics != row["metrics"]
        or any(tags.get(k) != v for k, v in want_tags.items())
    ):
        raise SystemExit(f"search_runs: {side} bulk-seeded run reads back wrong: {params} {tags}")


def bench_search(root: Path, n_runs: int, api_runs: int) -> dict[str, Any]:
    import mlflow
    from mlflow.entities import Metric as MlflowMetric
    from mlflow.entities import Param

    import loopline as ll
    from loopline.tracking.validation import make_metric

    data = seed_data(n_runs)
    api_runs = max(1, min(api_runs, n_runs))
    ll.use_workspace(root / "ll-search")
    tracking = ll.current_workspace().tracking
    ll_exp = tracking.get_or_create_experiment("search").experiment_id
    mlflow.set_tracking_uri(sqlite_uri(root / "mlflow-search.db"))
    client = mlflow.MlflowClient()
    ml_exp = client.create_experiment("search")

    log(f"  seeding: {api_runs} runs per tool through its API (create_run + log_batch)")
    ll_ids, ml_ids = [], []
    t0 = time.perf_counter()
    for row in data[:api_runs]:
        ts = now_ms()
        run = tracking.create_run(ll_exp, run_name=row["name"], tags=row["tags"])
        tracking.log_batch(
            run.info.run_id,
            metrics=[make_metric(k, v, 0, ts) for k, v in row["metrics"].items()],
            params=list(row["params"].items()),
        )
        ll_ids.append(run.info.run_id)
    ll_seed = api_runs / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for row in data[:api_runs]:
        ts = now_ms()
        ml_run = client.create_run(ml_exp, tags=row["tags"], run_name=row["name"])
        client.log_batch(
            ml_run.info.run_id,
            metrics=[MlflowMetric(k, v, ts, 0) for k, v in row["metrics"].items()],
            params=[Param(k, v) for k, v in row["params"].items()],
        )
        ml_ids.append(ml_run.info.run_id)
    ml_seed = api_runs / (time.perf_counter() - t0)
    rest = data[api_runs:]
    if rest:
        log(f"  seeding: {len(rest)} more runs per tool by copying an API-made run's rows")
        last = clone_runs(
            loopline_db(ll.current_workspace()), "run_id", "run_name", ll_ids[0], rest
        )
        got = tracking.get_run(last)
        check_seeded("Loopline", got.params, got.metrics, got.tags, rest[-1])
        db = root / "mlflow-search.db"
        last = clone_runs(db, "run_uuid", "name", ml_ids[0], rest)
        ml_got = client.get_run(last).data
        check_seeded("MLflow", ml_got.params, ml_got.metrics, ml_got.tags, rest[-1])

    max_results = min(n_runs, 50_000)
    sides: dict[str, Callable[[str], int]] = {
        "loopline_client": lambda f: len(tracking.search_runs([ll_exp], f, None, max_results)[0]),
        "mlflow_client": lambda f: len(client.search_runs([ml_exp], f, max_results=max_results)),
        "loopline_pandas": lambda f: len(ll.search_runs(experiment_ids=[ll_exp], filter_string=f)),
        "mlflow_pandas": lambda f: len(
            mlflow.search_runs(experiment_ids=[ml_exp], filter_string=f)
        ),
        "loopline_page100": lambda f: len(tracking.search_runs([ll_exp], f, None, 100)[0]),
        "mlflow_page100": lambda f: len(client.search_runs([ml_exp], f, max_results=100)),
    }
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    counts: dict[str, list[int]] = {k: [] for k in sides}
    for run_query in sides.values():  # warm caches and imports; not timed
        run_query(queries()[0][0])
    log(f"  {QUERIES} queries x {len(sides)} APIs")
    expected = []
    for filter_string, threshold, lr in queries():
        expected.append(
            sum(1 for r in data if r["metrics"]["acc"] > threshold and r["params"]["lr"] == lr)
        )
        for name, run_query in sides.items():
            c0, t0 = time.process_time(), time.perf_counter()
            counts[name].append(run_query(filter_string))
            wall[name].append((time.perf_counter() - t0) * 1000)
            cpu[name].append((time.process_time() - c0) * 1000)
    for name, got in counts.items():
        want = [min(n, 100) for n in expected] if name.endswith("page100") else expected
        if got != want:
            raise SystemExit(f"search_runs: {name} returned {got} rows, expected {want}")
    ll.use_workspace(None)

    def stats(v: list[float]) -> dict[str, float]:
        return {"p50": statistics.median(v), "p95": percentile(v, 95), "max": max(v)}

    return {
        "runs": n_runs,
        "api_seeded_runs": api_runs,
        "queries": [q for q, _, _ in queries()],
        "rows_returned": expected,
        "seed_api_runs_per_s": {"loopline": ll_seed, "mlflow": ml_seed},
        "latency_ms": {name: stats(v) for name, v in wall.items()},
        "cpu_ms": {name: stats(v) for name, v in cpu.items()},
        "per_query_wall_ms": wall,
    }


# -- 4. memory (runs in a child process) -----------------------------------------------------
def child_memory(tool: str, points: int, directory: Path) -> dict[str, Any]:
    """Log ``points`` points in this fresh process; report RSS figures as JSON."""
    t_import = time.perf_counter()
    if tool == "loopline":
        import loopline as ll

        ll.use_workspace(directory / "ll-memory")
        ll.set_experiment("memory")
        run = ll.start_run(capture=False)
        db = loopline_db(ll.current_workspace())
        peak_before, reset = peak_rss_bytes(), reset_peak_rss()
        baseline = rss_bytes()
        t0 = time.perf_counter()
        for i in range(points):
            ll.log_metric("loss", i * 1e-6, step=i)
        ll.flush()
    else:
        import mlflow
        from mlflow.entities import Metric as MlflowMetric

        quiet_mlflow()
        db = directory / "mlflow-memory.db"
        mlflow.set_tracking_uri(sqlite_uri(db))
        client = mlflow.MlflowClient()
        run_id = client.create_run(client.create_experiment("memory")).info.run_id
        peak_before, reset = peak_rss_bytes(), reset_peak_rss()
        baseline = rss_bytes()
        t0 = time.perf_counter()
        for start in range(0, points, BATCH):
            ts = now_ms()
            batch = [
                MlflowMetric("loss", i * 1e-6, ts, i)
                for i in range(start, min(start + BATCH, points))
            ]
            client.log_batch(run_id, metrics=batch)
    seconds = time.perf_counter() - t0
    peak, final = peak_rss_bytes(), rss_bytes()
    if tool == "loopline":
        run.__exit__(None, None, None)
    return {
        "tool": tool,
        "points": points,
        "setup_s": t0 - t_import,
        "log_s": seconds,
        "baseline_rss": baseline,
        "peak_rss_before_logging": peak_before,
        "peak_reset_at_baseline": reset,
        "peak_rss": peak,
        "final_rss": final,
        "peak_growth": peak - baseline,
        "stored_points": count_rows(db, "metrics"),
    }


def bench_memory(root: Path, tool: str, points: int) -> dict[str, Any]:
    log(f"  {tool}: {points:,} points in a child process")
    directory = root / f"memory-{tool}"
    directory.mkdir()
    out = subprocess.run(
        [
            *(sys.executable, __file__, "--child-memory", tool),
            *("--memory-points", str(points), "--dir", str(directory)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"memory child ({tool}) failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["stored_points"] != points:
        raise SystemExit(f"memory child ({tool}) stored {result['stored_points']} of {points}")
    return result


# -- report ----------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    out = {
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "loopline": version("loopline"),
        "sqlalchemy": version("sqlalchemy"),
    }
    for package in ("mlflow", "mlflow-skinny"):
        try:
            out[package] = version(package)
        except Exception:
            pass
    return out


def verdicts(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if "log_metric" in res:
        r = res["log_metric"]["calls_per_s"]
        ratio = r["loopline_end_to_end"]["median"] / r["mlflow_sync"]["median"]
        out["log_metric"] = {"ratio": ratio, "pass": ratio >= 50}
    if "log_batch" in res:
        r = res["log_batch"]["points_per_s"]
        ratio = r["loopline"]["median"] / r["mlflow"]["median"]
        out["log_batch"] = {"ratio": ratio, "pass": ratio >= 10}
    if "search_runs" in res:
        lat = res["search_runs"]["latency_ms"]
        client = lat["mlflow_client"]["p50"] / lat["loopline_client"]["p50"]
        pandas = lat["mlflow_pandas"]["p50"] / lat["loopline_pandas"]["p50"]
        ok = lat["loopline_client"]["p50"] < 50 and lat["loopline_pandas"]["p50"] < 50
        out["search_runs"] = {
            "ratio_client": client,
            "ratio_pandas": pandas,
            "pass": ok and min(client, pandas) >= 10,
        }
    if "memory" in res and "loopline" in res["memory"]:
        m = res["memory"]["loopline"]
        growth_mb = m["peak_growth"] / 1e6
        out["memory"] = {
            "growth_mb": growth_mb,
            "pass": growth_mb < 100 and m["points"] >= 1_000_000,
        }
    return out


def print_report(res: dict[str, Any]) -> None:
    def row(label: str, value: str, note: str = "") -> None:
        print(f"  {label:<44} {value:>14}  {note}")

    v = res["verdicts"]

    def verdict(key: str, detail: str) -> None:
        mark = "PASS" if v[key]["pass"] else "MISS"
        print(f"  -> {detail}; goal: {GOALS[key]}: {mark}\n")

    if "log_metric" in res:
        r = res["log_metric"]
        c = r["calls_per_s"]
        print(f"1. log_metric from one thread, calls/s (median of {r['reps']}; min-max)")
        for key, label, n in (
            ("loopline_caller", "Loopline ll.log_metric, caller-side", r["calls"]["loopline"]),
            ("loopline_end_to_end", "Loopline ll.log_metric + ll.flush()", r["calls"]["loopline"]),
            ("mlflow_sync", "MLflow mlflow.log_metric (default, sync)", r["calls"]["mlflow"]),
            ("mlflow_async_caller", "MLflow synchronous=False, caller-side", r["calls"]["mlflow"]),
            ("mlflow_async_end_to_end", "MLflow synchronous=False + flush", r["calls"]["mlflow"]),
        ):
            s = c[key]
            row(label, f"{s['median']:,.0f}", f"{s['min']:,.0f}-{s['max']:,.0f}; {n:,} calls")
        verdict("log_metric", f"end-to-end {v['log_metric']['ratio']:.0f}x MLflow (sync)")
    if "log_batch" in res:
        r = res["log_batch"]
        print(
            f"2. log_batch, metric points/s, {r['batch_size']}-point batches, "
            f"{r['points']:,} points (median of {r['reps']}; min-max)"
        )
        for key, label in (
            ("loopline", "Loopline tracking.log_batch"),
            ("mlflow", "MLflow MlflowClient().log_batch"),
        ):
            s = r["points_per_s"][key]
            row(label, f"{s['median']:,.0f}", f"{s['min']:,.0f}-{s['max']:,.0f}")
        verdict("log_batch", f"{v['log_batch']['ratio']:.1f}x MLflow")
    if "search_runs" in res:
        r = res["search_runs"]
        rows = r["rows_returned"]
        print(
            f"3. search_runs over {r['runs']:,} runs, {len(rows)} queries "
            f"(metric + param filter), ms"
        )
        print(
            f"   rows returned per query (same on every side): min {min(rows)}, "
            f"median {statistics.median(rows):.0f}, max {max(rows)}"
        )
        cpu = r["cpu_ms"]
        for key, label in (
            ("loopline_client", "Loopline tracking.search_runs (list)"),
            ("mlflow_client", "MLflow MlflowClient().search_runs (list)"),
            ("loopline_pandas", "Loopline ll.search_runs (DataFrame)"),
            ("mlflow_pandas", "MLflow mlflow.search_runs (DataFrame)"),
            ("loopline_page100", "Loopline first page, max_results=100"),
            ("mlflow_page100", "MLflow first page, max_results=100"),
        ):
            s = r["latency_ms"][key]
            row(
                label,
                f"p50 {s['p50']:,.1f}",
                f"p95 {s['p95']:,.1f}; max {s['max']:,.1f}; CPU p50 {cpu[key]['p50']:,.1f}",
            )
        seed = r["seed_api_runs_per_s"]
        print(
            f"   seeding: {r['api_seeded_runs']} runs each through the API, runs/s "
            f"(create_run + log_batch): Loopline {seed['loopline']:,.0f}, "
            f"MLflow {seed['mlflow']:,.0f}; the rest copied from those rows in bulk"
        )
        s = v["search_runs"]
        verdict(
            "search_runs",
            f"p50 {s['ratio_client']:.0f}x faster (list), {s['ratio_pandas']:.0f}x (DataFrame)",
        )
    if "memory" in res:
        print("4. peak RSS growth above the post-start_run baseline, fresh process")
        for tool, m in res["memory"].items():
            how = "ll.log_metric loop + flush" if tool == "loopline" else "log_batch x1000"
            row(
                f"{'Loopline' if tool == 'loopline' else 'MLflow'} {m['points']:,} pts, {how}",
                f"{m['peak_growth'] / MiB:,.1f} MiB",
                f"baseline {m['baseline_rss'] / MiB:.0f} MiB, {m['points'] / m['log_s']:,.0f} "
                f"pts/s",
            )
        if "memory" in v:
            verdict("memory", f"{v['memory']['growth_mb']:.1f} MB (10^6 bytes)")
    env = res["env"]
    print(
        f"versions: {', '.join(f'{k} {val}' for k, val in res['versions'].items())}\n"
        f"machine: {env['cpu']}, {env['cores']} cores, {env['ram_gib']} GiB, "
        f"{env.get('filesystem', '?')}, {env['os']}\n"
        f"load average 1/5/15 min: before {res['loadavg_before']}, after "
        f"{env['loadavg_1_5_15']}; total {res['wall_s']:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions for 1 and 2 (default 3)")
    parser.add_argument("--calls", type=int, default=20_000, help="Loopline log_metric calls")
    parser.add_argument("--mlflow-calls", type=int, default=1_000, help="MLflow log_metric calls")
    parser.add_argument("--batch-points", type=int, default=50_000, help="points per rep in 2")
    parser.add_argument("--runs", type=int, default=10_000, help="runs seeded for search")
    parser.add_argument(
        "--api-runs", type=int, default=200, help="of those, made through each API (timed)"
    )
    parser.add_argument("--memory-points", type=int, default=1_000_000)
    parser.add_argument(
        "--mlflow-memory-points", type=int, default=1_000_000, help="0 skips MLflow's memory run"
    )
    parser.add_argument(
        "--only", nargs="+", choices=["log_metric", "log_batch", "search_runs", "memory"]
    )
    parser.add_argument("--dir", type=Path, help="scratch directory (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--child-memory", choices=["loopline", "mlflow"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child_memory:
        print(json.dumps(child_memory(args.child_memory, args.memory_points, args.dir)))
        return

    quiet_mlflow()
    only = set(args.only or ["log_metric", "log_batch", "search_runs", "memory"])
    root = Path(tempfile.mkdtemp(prefix="loopline-bench-tracking-", dir=args.dir))
    res: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "loadavg_before": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
    started = time.perf_counter()
    try:
        if "log_metric" in only:
            log("1. log_metric")
            res["log_metric"] = bench_log_metric(root, args.reps, args.calls, args.mlflow_calls)
        if "log_batch" in only:
            log("2. log_batch")
            res["log_batch"] = bench_log_batch(root, args.reps, args.batch_points)
        if "search_runs" in only:
            log("3. search_runs")
            res["search_runs"] = bench_search(root, args.runs, args.api_runs)
        if "memory" in only:
            log("4. memory")
            res["memory"] = {"loopline": bench_memory(root, "loopline", args.memory_points)}
            if args.mlflow_memory_points:
                res["memory"]["mlflow"] = bench_memory(root, "mlflow", args.mlflow_memory_points)
        res["wall_s"] = time.perf_counter() - started
        res["versions"] = versions()
        res["env"] = describe(root)
        res["verdicts"] = verdicts(res)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_report(res)


if __name__ == "__main__":
    main()
