"""Tracking servers side by side: ``loopline server`` and ``mlflow server``, one MLflow client.

Both servers run as child processes of this script on the same machine, with the same backend
type (a fresh SQLite file each, or a fresh PostgreSQL database each), the same number of uvicorn
workers and access logs off on both. The benchmark process drives them with the official MLflow
Python client (``MlflowClient(tracking_uri="http://127.0.0.1:PORT")``), the same code for both.

1. **ingest**: ``--threads`` client threads, each with its own client and its own run, call
   ``log_batch`` with 1000 metric points (MLflow's per-call maximum; 10 keys x 100 steps,
   steps increasing batch after batch) for ``--seconds`` seconds. Points/s = points the server
   acknowledged / elapsed. Afterwards every run's every key is read back with
   ``get_metric_history`` through the server; any point missing is reported as loss.
2. **search**: ``--runs`` runs in one experiment, each with 5 params, 5 metrics and 3 tags from
   a fixed seed (identical data for both tools). The first ``--api-runs`` go through the server
   (``create_run`` + ``log_batch``; their rate is reported); the rest are written before the
   server starts, directly with each tool's own library: Loopline's
   ``Workspace(...).tracking`` service (``create_run`` + ``log_batch`` per run, as the server
   would) and MLflow's ``SqlAlchemyStore`` (its ORM tables, bulk-inserted in one transaction
   with the columns its ``create_run`` writes; creating 10k runs through ``mlflow server`` takes
   minutes). One bulk-written run is read back through the server and compared. Then
   ``search_runs([exp], "metrics.m1 > 0.5 and params.p1 = 'a'", order_by=["metrics.m2 DESC"],
   max_results=100)`` and an unfiltered first page of 1000 (on PostgreSQL after ``ANALYZE``
   of both databases, since bulk-written tables have no planner statistics yet), ``--warmup``
   untimed then ``--reps`` timed calls each, alternating: p50/p95 wall clock at the client. The
   filtered answer is checked against the top 100 computed from the seeded data.
3. **memory**: RSS of the server's process tree (psutil, the process and all its children):
   idle (after readiness and a short settle), peak during ingest (sampled every 0.1 s), and at
   the end.

Results print as a table; ``--results`` (default ``benchmarks/RESULTS.md``) gets its
"## Issue 5: tracking server" section replaced (or appended), other sections untouched
(``--no-results`` skips this).

    python benchmarks/server.py [--backend sqlite|postgresql|both] [--seconds 15] [--threads 4]
        [--runs 10000] [--api-runs 200] [--reps 30] [--warmup 3] [--workers 1]
        [--pg-url postgresql://postgres@127.0.0.1:5432] [--dir DIR] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from machine import MiB, describe

# Nothing phones home, in this process and (through the inherited environment) in the servers.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
TOOLS = ("loopline", "mlflow")
BATCH = 1000  # MLflow's limit of metrics per log_batch call
KEYS = 10
FILTER = "metrics.m1 > 0.5 and params.p1 = 'a'"
ORDER = ["metrics.m2 DESC"]
SECTION = "## Issue 5: tracking server"
NOTES = "### Analysis (written by hand; kept when the script rewrites the section)"
GOALS = {"ingest": 5.0, "search": 5.0}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# -- backends -----------------------------------------------------------------------------------
def pg_admin(pg_url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as con:
        for statement in statements:
            con.execute(statement)


def fresh_store(tool: str, backend: str, root: Path, pg_url: str) -> str:
    """A new, empty store for ``tool``; returns its URI in that tool's spelling."""
    if backend == "sqlite":
        path = root / f"{tool}.db"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    db = "bench_ll" if tool == "loopline" else "bench_mlflow"
    pg_admin(pg_url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", f"CREATE DATABASE {db}")
    host = pg_url.split("://", 1)[1]
    # MLflow's plain postgresql:// means psycopg2 (installed with the bench extra's peers).
    scheme = "postgresql+psycopg" if tool == "loopline" else "postgresql"
    return f"{scheme}://{host}/{db}"


def psycopg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def drop_store(tool: str, backend: str, pg_url: str) -> None:
    if backend == "postgresql":
        db = "bench_ll" if tool == "loopline" else "bench_mlflow"
        pg_admin(pg_url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


# -- servers ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(
    tool: str, store: str, artifacts: Path, home: Path, port: int, workers: int
) -> list[str]:
    if tool == "loopline":
        return [
            PYTHON, "-m", "loopline", "--home", str(home), "server",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--store", store, "--artifacts", str(artifacts), "--log-level", "warning",
        ]  # fmt: skip
    return [
        str(Path(PYTHON).parent / "mlflow"), "server",
        "--backend-store-uri", store, "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--uvicorn-opts", "--no-access-log",
    ]  # fmt: skip


def display_command(cmd: list[str], root: Path) -> str:
    text = " ".join(cmd).replace(str(root), "$DIR").replace(PYTHON, "python")
    return text.replace(str(Path(PYTHON).parent) + "/", "")


class Server:
    """A server child process; :meth:`stop` ends it and every process it started, by pid."""

    def __init__(self, tool: str, cmd: list[str], port: int, logfile: Path) -> None:
        import psutil

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LOOPLINE_", "MLFLOW_TRACKING_"))
        }
        self.tool, self.port, self.logfile = tool, port, logfile
        self.url = f"http://127.0.0.1:{port}"
        self._log = logfile.open("wb")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.ps = psutil.Process(self.proc.pid)

    def wait_ready(self, timeout: float = 120.0) -> float:
        path = "/readyz" if self.tool == "loopline" else "/health"
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                tail = self.logfile.read_text(errors="replace")[-3000:]
                raise SystemExit(f"{self.tool} server exited ({self.proc.returncode}):\n{tail}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.tool} server not ready after {timeout} s; see {self.logfile}")

    def rss(self) -> int:
        return self.rss_split()[0]

    def rss_split(self) -> tuple[int, int]:
        """(RSS of the whole tree, RSS without MLflow's job runner and its huey consumers,
        which ``mlflow server`` starts by default next to the web server)."""
        import psutil

        total = jobs = 0
        try:
            procs = [self.ps, *self.ps.children(recursive=True)]
        except psutil.Error:
            return 0, 0
        for p in procs:
            try:
                rss = p.memory_info().rss
                total += rss
                if any("_job_runner" in a or "huey" in a for a in p.cmdline()):
                    jobs += rss
            except psutil.Error:
                pass
        return total, total - jobs

    def processes(self) -> int:
        try:
            return 1 + len(self.ps.children(recursive=True))
        except Exception:
            return 0

    def stop(self) -> None:
        import psutil

        try:
            children = self.ps.children(recursive=True)
        except psutil.Error:
            children = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for child in children:  # workers the root may have left behind
            try:
                child.kill()
            except psutil.Error:
                pass
        self._log.close()


# -- data ---------------------------------------------------------------------------------------
def seed_data(n: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append(
            {
                "name": f"run-{i:05d}",
                "params": {
                    "p1": rng.choice("abc"),
                    "p2": rng.choice(("16", "32", "64", "128")),
                    "p3": rng.choice(("adam", "adamw", "sgd")),
                    "p4": str(rng.randint(1, 100)),
                    "p5": f"cfg-{rng.randint(0, 9)}",
                },
                "metrics": {f"m{k}": round(rng.random(), 6) for k in range(1, 6)},
                "tags": {
                    "team": rng.choice(("vision", "nlp", "speech")),
                    "env": rng.choice(("dev", "prod")),
                    "note": f"seeded run {i}",
                },
            }
        )
    return rows


def expected_top(data: list[dict[str, Any]]) -> list[float]:
    hits = [
        r["metrics"]["m2"] for r in data if r["metrics"]["m1"] > 0.5 and r["params"]["p1"] == "a"
    ]
    return sorted(hits, reverse=True)[:100]


def seed_loopline(store: str, home: Path, artifacts: Path, rows: list[dict], t0: int) -> str:
    """Create the search experiment and write ``rows`` through Loopline's tracking service."""
    from loopline.config import load_settings
    from loopline.tracking.validation import make_metric
    from loopline.workspace import Workspace

    settings = load_settings(
        {"home": str(home), "store_uri": store, "artifact_uri": str(artifacts)}, env={}
    ).settings
    ws = Workspace(settings)
    try:
        tracking = ws.tracking
        exp = tracking.create_experiment("search")
        for i, row in enumerate(rows):
            run = tracking.create_run(
                exp, run_name=row["name"], tags=row["tags"], start_time=t0 + i
            )
            tracking.log_batch(
                run.info.run_id,
                metrics=[make_metric(k, v, 0, t0 + i) for k, v in row["metrics"].items()],
                params=list(row["params"].items()),
            )
        return exp
    finally:
        ws.close()


def seed_mlflow(store: str, artifacts: Path, rows: list[dict], t0: int) -> str:
    """Create the search experiment with MLflow's SqlAlchemyStore and bulk-insert ``rows`` into
    its tables with the columns its ``create_run`` + ``log_batch`` write, in one transaction."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    ml = SqlAlchemyStore(store, artifacts.as_uri())
    try:
        exp = ml.create_experiment("search")
        location = ml.get_experiment(exp).artifact_location.rstrip("/")
        runs, tags, params, metrics = [], [], [], []
        for i, row in enumerate(rows):
            run_id = uuid.uuid4().hex
            runs.append(
                {
                    "run_uuid": run_id,
                    "name": row["name"],
                    "artifact_uri": f"{location}/{run_id}/artifacts",
                    "experiment_id": int(exp),
                    "source_type": "UNKNOWN",
                    "source_name": "",
                    "entry_point_name": "",
                    "user_id": "bench",
                    "status": "RUNNING",
                    "start_time": t0 + i,
                    "end_time": None,
                    "deleted_time": None,
                    "source_version": "",
                    "lifecycle_stage": "active",
                }
            )
            for k, v in {**row["tags"], "mlflow.runName": row["name"]}.items():
                tags.append({"run_uuid": run_id, "key": k, "value": v})
            for k, v in row["params"].items():
                params.append({"run_uuid": run_id, "key": k, "value": v})
            for k, v in row["metrics"].items():
                metrics.append(
                    {
                        "run_uuid": run_id,
                        "key": k,
                        "value": v,
                        "timestamp": t0 + i,
                        "step": 0,
                        "is_nan": False,
                    }
                )
        with ml.ManagedSessionMaker() as session:
            session.execute(insert(SqlRun), runs)
            session.execute(insert(SqlTag), tags)
            session.execute(insert(SqlParam), params)
            session.execute(insert(SqlMetric), metrics)
            session.execute(insert(SqlLatestMetric), metrics)
        return exp
    finally:
        ml.engine.dispose()


# -- measurements -------------------------------------------------------------------------------
def api_create_runs(url: str, exp: str, rows: list[dict], t0: int) -> float:
    """Create ``rows`` through the server; returns runs/s."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=url)
    start = time.perf_counter()
    for i, row in enumerate(rows):
        run = client.create_run(exp, start_time=t0 + i, tags=row["tags"], run_name=row["name"])
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, t0 + i, 0) for k, v in row["metrics"].items()],
            params=[Param(k, v) for k, v in row["params"].items()],
        )
    return len(rows) / (time.perf_counter() - start)


def check_run(url: str, exp: str, row: dict) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    found = client.search_runs([exp], f"attributes.run_name = '{row['name']}'", max_results=2)
    if len(found) != 1:
        raise SystemExit(f"search seed: run {row['name']} found {len(found)} times")
    data = found[0].data
    if (
        data.params != row["params"]
        or data.metrics != row["metrics"]
        or any(data.tags.get(k) != v for k, v in row["tags"].items())
    ):
        raise SystemExit(f"search seed: {row['name']} reads back wrong: {data}")


def _ingest_process(url: str, run_id: str, start_at: float, seconds: float) -> dict[str, Any]:
    """One client process: log 1000-point batches to ``run_id`` from ``start_at`` (wall clock)
    for ``seconds``. Runs in a child process, so the client's own CPU (building and serialising
    each batch) is not capped by one interpreter's GIL."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=url)
    steps = BATCH // KEYS
    ts = int(time.time() * 1000)
    sent, batch_no, latencies, errors = 0, 0, [], []
    time.sleep(max(0.0, start_at - time.time()))
    cpu0 = time.process_time()
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        base = batch_no * steps
        batch = [
            Metric(f"k{k}", (base + s) * 0.001 + k, ts + base + s, base + s)
            for s in range(steps)
            for k in range(KEYS)
        ]
        t = time.perf_counter()
        try:
            client.log_batch(run_id, metrics=batch)
        except Exception as exc:  # counted as not sent; reported
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            break
        latencies.append(time.perf_counter() - t)
        sent += len(batch)
        batch_no += 1
    return {
        "sent": sent,
        "latencies": latencies,
        "errors": errors,
        "cpu": time.process_time() - cpu0,
    }


def bench_ingest_processes(server: Server, processes: int, seconds: float) -> dict[str, Any]:
    """Ingest with one client per process (the same MLflow client, no shared GIL)."""
    import multiprocessing

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=server.url)
    exp = client.create_experiment("ingest-processes")
    run_ids = [client.create_run(exp, run_name=f"p{i}").info.run_id for i in range(processes)]
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 8.0  # after every child has imported mlflow
    server_cpu0 = cpu_seconds(server)
    with ctx.Pool(processes) as pool:
        results = pool.starmap(
            _ingest_process, [(server.url, rid, start_at, seconds) for rid in run_ids]
        )
    server_cpu = cpu_seconds(server) - server_cpu0
    total = sum(r["sent"] for r in results)
    stored = sum(
        len(client.get_metric_history(rid, f"k{k}")) for rid in run_ids for k in range(KEYS)
    )
    flat = sorted(x for r in results for x in r["latencies"])
    return {
        "processes": processes,
        "points_sent": total,
        "points_stored": stored,
        "points_per_s": total / seconds,
        "batch_p50_ms": flat[len(flat) // 2] * 1000 if flat else None,
        "client_cpu_s": sum(r["cpu"] for r in results),
        "server_cpu_s": server_cpu,
        "errors": [e for r in results for e in r["errors"]],
    }


def bench_ingest(server: Server, threads: int, seconds: float) -> dict[str, Any]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=server.url)
    exp = client.create_experiment("ingest")
    run_ids = [client.create_run(exp, run_name=f"ingest-{i}").info.run_id for i in range(threads)]
    steps = BATCH // KEYS
    sent = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []
    go = threading.Event()
    stop_at = [0.0]

    def worker(i: int) -> None:
        c = MlflowClient(tracking_uri=server.url)
        ts = int(time.time() * 1000)
        batch_no = 0
        go.wait()
        while time.perf_counter() < stop_at[0]:
            base = batch_no * steps
            batch = [
                Metric(f"k{k}", (base + s) * 0.001 + k, ts + base + s, base + s)
                for s in range(steps)
                for k in range(KEYS)
            ]
            t = time.perf_counter()
            try:
                c.log_batch(run_ids[i], metrics=batch)
            except Exception as exc:  # counted as not sent; reported
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                return
            latencies[i].append(time.perf_counter() - t)
            sent[i] += len(batch)
            batch_no += 1

    peak = list(server.rss_split())
    sampling = threading.Event()

    def sample() -> None:
        total, web = server.rss_split()
        peak[0], peak[1] = max(peak[0], total), max(peak[1], web)

    def sampler() -> None:
        while not sampling.wait(0.1):
            sample()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    watcher = threading.Thread(target=sampler)
    watcher.start()
    server_cpu0 = cpu_seconds(server)
    cpu0, start = time.process_time(), time.perf_counter()
    stop_at[0] = start + seconds
    go.set()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - cpu0
    server_cpu = cpu_seconds(server) - server_cpu0
    sampling.set()
    watcher.join()
    sample()

    total = sum(sent)
    log(f"    ingest: {total:,} points in {elapsed:.1f} s; verifying through get_metric_history")
    stored = 0
    for run_id in run_ids:
        for k in range(KEYS):
            stored += len(client.get_metric_history(run_id, f"k{k}"))
    flat = [x for lat in latencies for x in lat]
    return {
        "points_sent": total,
        "points_stored": stored,
        "lost": total - stored,
        "errors": errors[:5],
        "seconds": elapsed,
        "points_per_s": total / elapsed,
        "batches": len(flat),
        "batch_ms_p50": statistics.median(flat) * 1000 if flat else 0.0,
        "batch_ms_p95": percentile(flat, 95) * 1000 if flat else 0.0,
        "client_cpu_s": client_cpu,
        "server_cpu_s": server_cpu,
        "peak_rss": peak[0],
        "peak_rss_web": peak[1],
    }


def cpu_seconds(server: Server) -> float:
    import psutil

    total = 0.0
    try:
        procs = [server.ps, *server.ps.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def bench_search(url: str, exp: str, n_runs: int, top: list[float], reps: int, warmup: int):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    calls = {
        "filtered": lambda: client.search_runs(
            [exp], filter_string=FILTER, order_by=ORDER, max_results=100
        ),
        "page1000": lambda: client.search_runs([exp], max_results=1000),
    }
    got = calls["filtered"]()
    if [r.data.metrics["m2"] for r in got] != top:
        raise SystemExit("search_runs: the filtered page differs from the seeded data's top 100")
    if len(calls["page1000"]()) != min(1000, n_runs):
        raise SystemExit("search_runs: the unfiltered page is not 1000 runs")
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(reps):
        for name, call in calls.items():
            t = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - t) * 1000)
    return {
        name: {"p50": statistics.median(v), "p95": percentile(v, 95), "min": min(v), "max": max(v)}
        for name, v in times.items()
    }


def run_tool(tool: str, backend: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    where = root / backend / tool
    where.mkdir(parents=True, exist_ok=True)
    artifacts = where / "artifacts"
    artifacts.mkdir(exist_ok=True)
    store = fresh_store(tool, backend, where, args.pg_url)
    data = seed_data(args.runs)
    api_rows, direct_rows = data[: args.api_runs], data[args.api_runs :]
    t0 = int(time.time() * 1000) - 10 * len(data)
    res: dict[str, Any] = {"store": re.sub(r"//[^@/]*@", "//", store)}
    server = None
    try:
        log(f"  {tool}/{backend}: writing {len(direct_rows)} runs with its own library")
        start = time.perf_counter()
        if tool == "loopline":
            exp = seed_loopline(store, where, artifacts, direct_rows, t0 + len(api_rows))
        else:
            exp = seed_mlflow(store, artifacts, direct_rows, t0 + len(api_rows))
        res["direct_seed_s"] = time.perf_counter() - start
        log(f"  {tool}/{backend}: written in {res['direct_seed_s']:.1f} s")
        port = free_port()
        cmd = server_command(tool, store, artifacts, where, port, args.workers)
        res["command"] = display_command(cmd, root)
        server = Server(tool, cmd, port, where / "server.log")
        res["startup_s"] = server.wait_ready()
        time.sleep(args.settle)
        res["idle_rss"], res["idle_rss_web"] = server.rss_split()
        res["processes"] = server.processes()
        log(
            f"  {tool}/{backend}: ready in {res['startup_s']:.1f} s, idle RSS "
            f"{res['idle_rss'] / MiB:.0f} MiB; {len(api_rows)} runs through the server"
        )
        res["api_runs_per_s"] = api_create_runs(server.url, exp, api_rows, t0) if api_rows else 0
        check_run(server.url, exp, direct_rows[-1] if direct_rows else api_rows[-1])
        log(f"  {tool}/{backend}: ingest, {args.threads} threads x {args.seconds} s")
        res["ingest"] = bench_ingest(server, args.threads, args.seconds)
        res["after_ingest_rss"] = server.rss()
        if args.client_processes:
            log(f"  {tool}/{backend}: ingest, {args.client_processes} client processes")
            res["ingest_processes"] = bench_ingest_processes(
                server, args.client_processes, args.seconds
            )
        if backend == "postgresql":
            # Bulk-written tables have no planner statistics until autovacuum analyzes them
            # (and this machine's PostgreSQL runs with autovacuum=off): analyze both alike.
            db = "bench_ll" if tool == "loopline" else "bench_mlflow"
            with psycopg_connect(f"{args.pg_url}/{db}") as con:
                con.execute("ANALYZE")
        log(f"  {tool}/{backend}: search_runs over {args.runs} runs")
        res["search"] = bench_search(
            server.url, exp, args.runs, expected_top(data), args.reps, args.warmup
        )
        res["end_rss"] = server.rss()
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            drop_store(tool, backend, args.pg_url)
    return res


# -- report -------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    import sqlite3

    out = {"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}
    for name in ("loopline", "mlflow", "mlflow-skinny", "SQLAlchemy", "uvicorn", "fastapi",
                 "starlette", "psycopg", "psycopg2-binary", "psutil"):  # fmt: skip
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "absent"
    return out


def pg_version(pg_url: str) -> str:
    import psycopg

    try:
        with psycopg.connect(f"{pg_url}/postgres") as con:
            return str(con.execute("SHOW server_version").fetchone()[0])
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


ROWS = (
    # (label, path into a tool's result, format, higher is better, goal)
    ("log_batch points/s", ("ingest", "points_per_s"), "int", True, GOALS["ingest"]),
    ("log_batch call p50 ms", ("ingest", "batch_ms_p50"), "ms", False, None),
    (
        "log_batch points/s, 4 client processes",
        ("ingest_processes", "points_per_s"),
        "int",
        True,
        GOALS["ingest"],
    ),
    ("search filtered top-100 p50 ms", ("search", "filtered", "p50"), "ms", False, GOALS["search"]),
    ("search filtered top-100 p95 ms", ("search", "filtered", "p95"), "ms", False, None),
    ("search unfiltered 1000 p50 ms", ("search", "page1000", "p50"), "ms", False, None),
    ("search unfiltered 1000 p95 ms", ("search", "page1000", "p95"), "ms", False, None),
    ("runs created via server /s", ("api_runs_per_s",), "ms", True, None),
    ("RSS idle MiB, process tree", ("idle_rss",), "mib", False, None),
    ("RSS peak during ingest MiB, tree", ("ingest", "peak_rss"), "mib", False, None),
    ("RSS idle MiB, without job runner", ("idle_rss_web",), "mib", False, None),
    ("RSS peak MiB, without job runner", ("ingest", "peak_rss_web"), "mib", False, None),
)
FORMATS = {"int": "{:,.0f}".format, "ms": "{:.1f}".format, "mib": lambda v: f"{v / MiB:.0f}"}


def _get(result: dict[str, Any], path: tuple[str, ...]) -> float:
    value: Any = result
    for key in path:
        if key not in value:
            return float("nan")
        value = value[key]
    return float(value)


def pg_setting(pg_url: str, name: str) -> str:
    try:
        with psycopg_connect(f"{pg_url}/postgres") as con:
            return str(con.execute(f"SHOW {name}").fetchone()[0])
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"


def rows_for(res: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    out = []
    for backend, tools in res["backends"].items():
        for label, path, kind, higher, goal in ROWS:
            a, b = _get(tools["loopline"], path), _get(tools["mlflow"], path)
            if a != a or b != b:  # a measurement this run skipped
                continue
            ratio = (a / b if higher else b / a) if a and b else float("nan")
            verdict = ""
            if goal is not None:
                verdict = f"{'PASS' if ratio >= goal else 'MISS'} (goal >= {goal:g}x)"
            fmt = FORMATS[kind]
            out.append((f"{backend}: {label}", fmt(a), fmt(b), f"{ratio:.1f}x", verdict))
    return out


def print_report(res: dict[str, Any]) -> None:
    rows = rows_for(res)
    header = ("measurement", "Loopline", "MLflow", "ratio", "goal")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    for backend, tools in res["backends"].items():
        for tool, t in tools.items():
            if "ingest_processes" in t:
                p = t["ingest_processes"]
                print(
                    f"{backend}/{tool} ({p['processes']} client processes): sent "
                    f"{p['points_sent']:,} stored {p['points_stored']:,}; client CPU "
                    f"{p['client_cpu_s']:.1f} s, server CPU {p['server_cpu_s']:.1f} s; "
                    f"errors {p['errors']}"
                )
            i = t["ingest"]
            print(
                f"{backend}/{tool}: sent {i['points_sent']:,} stored {i['points_stored']:,} "
                f"lost {i['lost']:,}; client CPU {i['client_cpu_s']:.1f} s, server CPU "
                f"{i['server_cpu_s']:.1f} s in {i['seconds']:.1f} s; errors {i['errors']}"
            )
    print(f"machine: {res['machine']}")
    print(f"versions: {res['versions']}")


def markdown(res: dict[str, Any]) -> str:
    a = res["args"]
    m, v = res["machine"], res["versions"]
    lines = [
        SECTION,
        "",
        f"    python benchmarks/server.py --backend {a['backend']} --seconds {a['seconds']:g} "
        f"--threads {a['threads']} --runs {a['runs']} --workers {a['workers']}",
        "",
        f"Run at {res['started']} (took {res['took_s'] / 60:.1f} min). Both servers are child "
        "processes of the benchmark, on the same machine, one after the other, each on a fresh "
        "store of the same type, with "
        f"**{a['workers']} uvicorn worker{'s' if a['workers'] > 1 else ''}** each and access logs "
        "off; the official MLflow client (`MlflowClient(tracking_uri=...)`) in the benchmark "
        "process drives both. The client shares the 2 cores with the server, so these are "
        "whole-system figures, not server-only ones. PostgreSQL runs with autovacuum "
        f"{res['autovacuum']} here; the benchmark runs `ANALYZE` on both databases before "
        "searching.",
        "",
        f"**Machine.** {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}, "
        f"load average {m['loadavg_1_5_15']} right after the run. **Versions.** Python "
        f"{v['python']}, Loopline {v['loopline']}, mlflow {v['mlflow']} (server and client), "
        f"SQLAlchemy {v['SQLAlchemy']}, uvicorn {v['uvicorn']}, FastAPI {v['fastapi']}, SQLite "
        f"{v['sqlite']}, PostgreSQL {res['postgresql']}, psycopg {v['psycopg']}, psycopg2 "
        f"{v['psycopg2-binary']}.",
        "",
        "| measurement | Loopline | MLflow | Loopline vs MLflow | goal |",
        "|---|---:|---:|---:|---|",
    ]
    for label, ll, ml, ratio, verdict in rows_for(res):
        lines.append(f"| {label} | {ll} | {ml} | {ratio} | {verdict} |")
    lines += ["", "Ingest detail (points sent = points acknowledged; stored = read back through "
              "`get_metric_history`):", ""]  # fmt: skip
    for backend, tools in res["backends"].items():
        for tool, t in tools.items():
            i = t["ingest"]
            lines.append(
                f"- {backend}/{tool}: {i['points_sent']:,} sent, {i['points_stored']:,} stored, "
                f"**{i['lost']:,} lost**, {i['batches']} batches in {i['seconds']:.1f} s, batch "
                f"p95 {i['batch_ms_p95']:.0f} ms; CPU: client {i['client_cpu_s']:.1f} s, server "
                f"{i['server_cpu_s']:.1f} s; errors: {i['errors'] or 'none'}."
            )
            if "ingest_processes" in t:
                p = t["ingest_processes"]
                lost = p["points_sent"] - p["points_stored"]
                lines.append(
                    f"- {backend}/{tool}, {p['processes']} client processes: "
                    f"{p['points_sent']:,} sent, {p['points_stored']:,} stored, **{lost:,} lost**, "
                    f"batch p50 {p['batch_p50_ms']:.0f} ms; CPU: clients "
                    f"{p['client_cpu_s']:.1f} s, server {p['server_cpu_s']:.1f} s; "
                    f"errors: {p['errors'] or 'none'}."
                )
    lines += ["", "Commands (`$DIR` is the scratch directory):", ""]
    for tools in res["backends"].values():
        for t in tools.values():
            lines.append(f"    {t['command']}")
    return "\n".join(lines) + "\n"


def write_results(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(SECTION))
        end = nxt + 1 if nxt != -1 else len(text)
        notes = text.find(NOTES, start, end)  # hand-written analysis survives a re-run
        kept = text[notes:end].rstrip("\n") + "\n" if notes != -1 else ""
        section = section + ("\n" + kept if kept else "")
        text = text[:start] + section + ("\n" + text[end:] if nxt != -1 else "")
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=15.0, help="ingest duration (15)")
    parser.add_argument("--threads", type=int, default=4, help="ingest client threads (4)")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="also ingest with this many client processes, one client each (4; 0 skips)",
    )
    parser.add_argument("--runs", type=int, default=10_000, help="runs for search (10000)")
    parser.add_argument("--api-runs", type=int, default=200, help="of those, made via the server")
    parser.add_argument("--reps", type=int, default=30, help="timed searches per query (30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed searches first (3)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per server (1)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before idle RSS (10)")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--dir", type=Path, help="scratch directory (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep databases and logs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-results", action="store_true", help="do not edit RESULTS.md")
    args = parser.parse_args()
    args.api_runs = max(1, min(args.api_runs, args.runs))

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    root = Path(args.dir or tempfile.mkdtemp(prefix="ll-server-bench-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    started, t_start = datetime.now().strftime("%Y-%m-%d %H:%M"), time.perf_counter()
    res: dict[str, Any] = {"args": {k: v for k, v in vars(args).items() if k != "dir"}}
    res["args"]["results"] = str(args.results)
    res["backends"] = {}
    try:
        for backend in backends:
            log(f"{backend}:")
            res["backends"][backend] = {
                tool: run_tool(tool, backend, args, root) for tool in args.tools
            }
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
        else:
            log(f"kept {root}")
    res["started"] = started
    res["took_s"] = time.perf_counter() - t_start
    res["machine"] = describe(HERE)
    res["versions"] = versions()
    res["postgresql"] = pg_version(args.pg_url) if "postgresql" in backends else "not used"
    res["autovacuum"] = pg_setting(args.pg_url, "autovacuum") if "postgresql" in backends else "-"
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    elif set(args.tools) == set(TOOLS):
        print_report(res)
    if not args.no_results and set(args.tools) == set(TOOLS):
        write_results(args.results, markdown(res))
        log(f"wrote {SECTION!r} in {args.results}")


if __name__ == "__main__":
    main()
