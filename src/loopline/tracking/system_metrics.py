"""Optional system metrics (CPU, memory, GPU) sampled by a background thread while a run is
active, logged as ``system/*`` metrics. Uses psutil when installed, /proc otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

from loopline.tracking.entities import Metric

__all__ = ["SystemMetricsMonitor", "sample"]


def _rss_mb() -> float:
    try:
        with open(f"/proc/{os.getpid()}/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):  # pragma: no cover - non-Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _cpu_times() -> tuple[float, float]:
    with open("/proc/stat") as fh:
        fields = [float(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields), idle


def _gpu() -> dict[str, float]:
    if shutil.which("nvidia-smi") is None:
        return {}
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=utilization.gpu,memory.used",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {}
    values: dict[str, float] = {}
    for i, line in enumerate(out):
        util, mem = (float(x) for x in line.split(","))
        values[f"system/gpu_{i}_utilization_percentage"] = util
        values[f"system/gpu_{i}_memory_usage_megabytes"] = mem
    return values


def sample(previous: tuple[float, float] | None) -> tuple[dict[str, float], tuple[float, float]]:
    """One sample; CPU utilisation is measured since ``previous`` CPU times."""
    values: dict[str, float] = {"system/process_rss_megabytes": _rss_mb()}
    try:
        current = _cpu_times()
        if previous is not None:
            total = current[0] - previous[0]
            idle = current[1] - previous[1]
            if total > 0:
                values["system/cpu_utilization_percentage"] = 100.0 * (1 - idle / total)
    except (OSError, ValueError, IndexError):  # pragma: no cover - non-Linux
        current = (0.0, 0.0)
    values.update(_gpu())
    return values, current


class SystemMetricsMonitor:
    def __init__(
        self,
        run_id: str,
        log_metrics_fn: Callable[[str, list[Metric]], None],
        interval: float = 10.0,
    ) -> None:
        self.run_id = run_id
        self._log = log_metrics_fn
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loopline-sysmetrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        previous = None
        step = 0
        while True:
            values, previous = sample(previous)
            if step > 0 or "system/cpu_utilization_percentage" in values:
                stamp = time.time_ns() // 1_000_000
                self._log(self.run_id, [Metric(k, v, stamp, step) for k, v in values.items()])
            step += 1
            if self._stop.wait(self._interval if step > 1 else min(1.0, self._interval)):
                return
