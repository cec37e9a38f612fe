"""What a benchmark ran on: versions and machine, printed with every result and kept in --json."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

MiB = 1024 * 1024


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / MiB, 1)
    except OSError:
        pass
    return 0.0


def _filesystem(path: Path) -> str:
    """Device and filesystem type of ``path`` as ``df -T`` reports them."""
    try:
        out = subprocess.run(
            ["df", "-T", str(path)], capture_output=True, text=True, check=True
        ).stdout.splitlines()[-1]
        device, fstype = out.split()[:2]
        block = Path("/sys/block") / os.path.basename(device)
        driver = block / "device" / "driver"
        rotational = block / "queue" / "rotational"
        facts = [os.path.basename(os.readlink(driver)) if driver.is_symlink() else ""]
        if rotational.exists():  # virtio disks report 1 whatever the host stores them on
            facts.append(f"rotational={rotational.read_text().strip()}")
        return f"{fstype} on {device} ({', '.join(f for f in facts if f) or 'unknown device'})"
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return "unknown"


def describe(data_dir: Path | None = None) -> dict[str, object]:
    info: dict[str, object] = {
        "python": platform.python_version(),
        "blake3": version("blake3"),
        "os": f"{platform.system()} {platform.release()} ({_os_name()})",
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        # Other work on the machine skews every figure; call this right after measuring.
        "loadavg_1_5_15": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
    if data_dir is not None:
        info["filesystem"] = _filesystem(data_dir)
    return info


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", sys.platform)
    except OSError:
        return sys.platform


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
    }


def print_table(rows: list[tuple[str, dict[str, float], str]], unit: str) -> None:
    """``rows``: (label, summary, note). Medians first; min/max show the spread."""
    width = max(len(label) for label, _, _ in rows)
    print(f"{'':{width}}  {'median':>9}  {'min':>9}  {'max':>9}  {unit}")
    for label, s, note in rows:
        print(f"{label:{width}}  {s['median']:9.0f}  {s['min']:9.0f}  {s['max']:9.0f}  {note}")
