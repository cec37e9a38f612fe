"""Non-blocking logging is still durable: a SIGKILL loses at most the last second, and many
processes logging at once lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import loopline as ll

LOGGER = textwrap.dedent(
    """
    import os, sys, time
    import loopline as ll
    ll.use_workspace(sys.argv[1])
    progress = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    run = ll.start_run(capture=False)
    os.write(progress, f"run {run.run_id}\\n".encode())
    i = 0
    while True:
        ll.log_metric("x", float(i), step=i)
        if i % 200 == 0:
            os.write(progress, f"{i} {time.time()}\\n".encode())
        i += 1
    """
)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_values_logged_more_than_a_second_before_sigkill_are_stored(tmp_path: Path):
    """A logger at full speed is SIGKILLed; everything it logged >1 s earlier is in the DB."""
    ws_dir, progress = tmp_path / "ws", tmp_path / "progress.txt"
    ll.use_workspace(ws_dir)  # create and migrate before the child starts
    child = subprocess.Popen([sys.executable, "-c", LOGGER, str(ws_dir), str(progress)])
    try:
        _wait_for(
            lambda: progress.exists() and progress.read_text().count("\n") > 20,
            60,
            "the logger to start",
        )
        time.sleep(3.0)
        kill_time = time.time()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    lines = progress.read_text().splitlines()
    run_id = lines[0].split()[1]
    marks = [(int(i), float(t)) for i, t in (line.split() for line in lines[1:] if line.strip())]
    safe = max(i for i, t in marks if t < kill_time - 1.0)
    assert safe > 1000, "the logger barely ran; the test proves nothing"
    steps = {m.step for m in ll.get_metric_history(run_id, "x")}
    missing = [s for s in range(safe + 1) if s not in steps]
    assert missing == [], f"{len(missing)} values logged >1 s before the kill were lost"


WORKER = textwrap.dedent(
    """
    import sys, time
    import loopline as ll
    ll.use_workspace(sys.argv[1])
    seconds = float(sys.argv[2])
    with ll.start_run(capture=False, run_name=sys.argv[3]) as run:
        n = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ll.log_metric("n", float(n), step=n)
            if n % 50 == 0:
                ll.log_metrics({"a": 1.0, "b": 2.0}, step=n)
            n += 1
    print(run.run_id, n, flush=True)
    """
)


@pytest.mark.slow
def test_eight_processes_logging_to_one_sqlite_workspace_lose_nothing(tmp_path: Path):
    """8 processes log as fast as they can for 10 s into one SQLite file; every value lands."""
    ws_dir = tmp_path / "ws"
    ll.use_workspace(ws_dir)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(ws_dir), "10", f"w{i}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    results = []
    try:
        for proc in workers:
            out, _ = proc.communicate(timeout=240)
            assert proc.returncode == 0
            run_id, count = out.split()
            results.append((run_id, int(count)))
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    tracking = ll.current_workspace().tracking
    for run_id, count in results:
        history = tracking.get_metric_history(run_id, "n")
        assert [m.step for m in history] == list(range(count))
        assert len(tracking.get_metric_history(run_id, "a")) == len(range(0, count, 50))
        assert tracking.get_run(run_id).info.status == "FINISHED"
    assert sum(c for _, c in results) > 8 * 100


EXITER = textwrap.dedent(
    """
    import os, sys, time
    import loopline as ll
    ll.use_workspace(sys.argv[1])
    run = ll.start_run(capture=False)
    print(run.run_id, flush=True)
    for i in range(5000):
        ll.log_metric("x", float(i), step=i)
    if sys.argv[2] == "sigterm":
        sys.stdout.write("ready\\n")
        sys.stdout.flush()
        time.sleep(60)
    # "exit": fall off the end with the run still active and values still queued
    """
)


@pytest.mark.parametrize(("how", "status"), [("exit", "FINISHED"), ("sigterm", "KILLED")])
def test_exit_and_sigterm_flush_queued_values_and_close_the_run(
    tmp_path: Path, how: str, status: str
):
    """Normal interpreter exit ends the run FINISHED, SIGTERM ends it KILLED; both first store
    every queued value."""
    ws_dir = tmp_path / "ws"
    ll.use_workspace(ws_dir)
    child = subprocess.Popen(
        [sys.executable, "-c", EXITER, str(ws_dir), how], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        if how == "sigterm":
            assert child.stdout.readline().strip() == "ready"
            child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if how == "sigterm":
        assert child.returncode == -signal.SIGTERM  # the default action still ends the process
    else:
        assert child.returncode == 0
    history = ll.get_metric_history(run_id, "x")
    assert [m.step for m in history] == list(range(5000))
    assert ll.get_run(run_id).info.status == status


def test_system_metrics_are_sampled_while_the_run_is_active(tmp_path: Path):
    """A monitor samples CPU and memory into system/* metrics until stopped."""
    from loopline.tracking.system_metrics import SystemMetricsMonitor

    ll.use_workspace(tmp_path / "ws")
    run = ll.start_run(capture=False)
    from loopline.tracking import fluent

    monitor = SystemMetricsMonitor(run.run_id, fluent._submit_metrics, interval=0.1)
    monitor.start()
    time.sleep(1.5)
    monitor.stop()
    ll.end_run()
    metrics = ll.get_run(run.run_id).metrics
    assert 0 <= metrics["system/cpu_utilization_percentage"] <= 100
    assert metrics["system/process_rss_megabytes"] > 10
    assert len(ll.get_metric_history(run.run_id, "system/process_rss_megabytes")) >= 3
