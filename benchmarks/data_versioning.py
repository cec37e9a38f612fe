"""Dataset versioning: ``loopline data add`` against ``dvc add`` on a directory of many files.

The issue 7 figures. A deterministic tree (``--files`` random, incompressible files totalling
``--total-mb`` MB, sizes lognormal around the mean, spread over ~200 subdirectories) is written
twice, byte for byte, into one scratch directory: one copy for Loopline, one inside a fresh DVC
project, so neither tool sees the other's files (DVC writes ``data.dvc`` next to its copy and
may relink files inside it; Loopline keeps a hash index keyed by path and inode). Both copies
sit on the same filesystem and, after generation, in the page cache (``--cache warm``, the
default); ``--cache cold`` drops the page cache before every timed command (needs root).

Every figure is the wall-clock time of one CLI command run as a subprocess, so interpreter
start-up and imports count:

1. *checksum floor*: a plain parallel BLAKE3 of every file (this script, ``--checksum-floor``:
   ``ThreadPoolExecutor(os.cpu_count())``, 1 MiB reads), the least any tool has to do;
2. first add: ``loopline --home WS data add DIR --name bench`` into a fresh workspace, and
   ``dvc add data`` in a fresh ``dvc init --no-scm`` project (DVC's default cache type,
   ``reflink,copy``; the link type it ended up using is reported);
3. ``--changed`` files are rewritten (half keep their size), and after >= 1.1 s both tools add
   the directory again;
4. start-up: ``loopline --help``, ``python -c "import loopline"`` and ``dvc --help``, median of 5.

Before each timed command the script calls ``sync``, so no tool pays for flushing bytes another
step left dirty. Neither tool syncs its store at the end of an add (Loopline writes its blobs
and packs without an fsync, DVC its cache), so each add is also given "+ sync" (with the time of
a ``sync`` right after it). The order of the two tools alternates from run to run, and
the stores of one run are moved aside, not deleted, until the last timed command (deleting
20,000 files just before an add slows the next file creations on some filesystems).
Results are checked: Loopline's version 1 must list every file and byte (``data show --json``),
version 2 must say "hashed N"; DVC's ``data.dvc`` must count the same files and bytes.

    python benchmarks/data_versioning.py [--files 20000] [--total-mb 600] [--changed 10]
        [--runs 1] [--dirs 200] [--cache warm|cold] [--workdir PATH] [--keep] [--json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

from machine import describe

PYTHON = sys.executable
BIN = Path(PYTHON).parent
MB = 1000 * 1000  # decimal, as `loopline data add` prints sizes
SEED = 7
NAME = "bench"
GOALS = {"first_add": 5.0, "re_add": 8.0}
STARTUP_REPS = 5


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the checksum floor (run as a subprocess of this script) -----------------------------------
def _blake3_file(path: str) -> tuple[str, int]:
    import blake3

    hasher = blake3.blake3()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1024 * 1024):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def checksum_floor(root: Path) -> None:
    """BLAKE3 of every file under ``root`` on os.cpu_count() threads; prints files and bytes."""
    paths = [os.path.join(d, f) for d, _, names in os.walk(root) for f in names]
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        results = list(pool.map(_blake3_file, paths))
    print(json.dumps({"files": len(results), "bytes": sum(size for _, size in results)}))


# -- the tree ----------------------------------------------------------------------------------
def plan_tree(files: int, total: int, dirs: int, seed: int) -> list[tuple[str, int]]:
    """(relative path, size) of every file: lognormal sizes scaled to ``total`` bytes exactly."""
    import numpy as np

    rng = np.random.default_rng(seed)
    raw = rng.lognormal(mean=0.0, sigma=1.0, size=files)
    sizes = np.maximum(1, np.floor(raw / raw.sum() * total)).astype(np.int64)
    sizes[int(np.argmax(sizes))] += total - int(sizes.sum())
    where = rng.integers(0, dirs, size=files)
    return [(f"d{where[i]:03d}/f{i:05d}.bin", int(sizes[i])) for i in range(files)]


def write_tree(plan: list[tuple[str, int]], roots: list[Path], seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    for rel, size in plan:
        data = rng.bytes(size)
        for root in roots:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def change_files(
    plan: list[tuple[str, int]], roots: list[Path], count: int, seed: int
) -> list[str]:
    """Rewrite ``count`` files in every copy with new random bytes: even ones keep their size
    (only the content and times change), odd ones get 0.5-1.5x their size. Updates ``plan``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(plan), size=count, replace=False).tolist())
    for n, i in enumerate(picked):
        rel, size = plan[i]
        new_size = size if n % 2 == 0 else max(1, int(size * rng.uniform(0.5, 1.5)))
        data = rng.bytes(new_size)
        for root in roots:
            (root / rel).write_bytes(data)
        plan[i] = (rel, new_size)
    return [plan[i][0] for i in picked]


def settle(paths: list[Path], age: float) -> float:
    """Sleep until every path's mtime and ctime are at least ``age`` seconds old (Loopline
    hashes files changed within the last second again rather than trust its index)."""
    newest = max(max(p.stat().st_mtime, p.stat().st_ctime) for p in paths)
    wait = newest + age - time.time()
    if wait > 0:
        time.sleep(wait)
    return max(wait, 0.0)


def all_files(root: Path) -> list[Path]:
    return [Path(d) / f for d, _, names in os.walk(root) for f in names]


# -- running commands --------------------------------------------------------------------------
def env_for_tools(site_cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "DVC_"))}
    env["DVC_NO_ANALYTICS"] = "1"  # no daemon phoning home after each command
    env["DVC_SITE_CACHE_DIR"] = str(site_cache)  # DVC's state db: fresh per project, cleaned up
    return env


def prepare(cache: str) -> None:
    """Before every timed command: flush dirty pages (so nobody pays for another step's
    writes), and for ``--cache cold`` drop the page cache."""
    os.sync()
    if cache == "cold":
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def timed(
    cmd: list[str], *, env: dict[str, str], cwd: Path | None = None, cache: str = "warm"
) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child and its threads/children, output)."""
    prepare(cache)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
            f"{proc.stderr[-3000:]}"
        )
    return elapsed, cpu, proc.stdout + proc.stderr


def sync_seconds() -> float:
    start = time.perf_counter()
    os.sync()
    return time.perf_counter() - start


def startup_times(env: dict[str, str], cwd: Path) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of each start-up command over STARTUP_REPS runs."""
    commands = {
        "loopline --help": [str(BIN / "loopline"), "--help"],
        'python -c "import loopline"': [PYTHON, "-c", "import loopline"],
        "dvc --help": [str(BIN / "dvc"), "--help"],
    }
    for cmd in commands.values():  # warm-up: modules into the page cache
        subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True)
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in commands}
    for _ in range(STARTUP_REPS):
        for label, cmd in commands.items():
            samples[label].append(timed(cmd, env=env, cwd=cwd)[:2])
    return {
        label: {
            "wall_s": statistics.median(w for w, _ in s),
            "cpu_s": statistics.median(c for _, c in s),
            "wall_samples_s": [w for w, _ in s],
        }
        for label, s in samples.items()
    }


# -- the tools ---------------------------------------------------------------------------------
_CREATED = re.compile(
    r"(\S+)@(\d+) created: ([\d,]+) files, .*\(hashed ([\d,]+), unchanged ([\d,]+)\)"
)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def check_loopline(
    out: str, version_no: int, files: int, total: int, hashed: int, ws: Path, env: dict[str, str]
) -> list[str]:
    warnings = []
    m = _CREATED.search(out)
    if m is None or _int(m.group(2)) != version_no:
        return [f"loopline add #{version_no}: unexpected output: {out.strip()[-300:]}"]
    if (_int(m.group(3)), _int(m.group(4)), _int(m.group(5))) != (files, hashed, files - hashed):
        warnings.append(
            f"loopline add #{version_no}: {m.group(0)!r}; expected {files:,} files, "
            f"hashed {hashed:,}, unchanged {files - hashed:,}"
        )
    show_cmd = [str(BIN / "loopline"), "--home", str(ws), "data", "show"]
    show = subprocess.run(
        [*show_cmd, f"{NAME}@{version_no}", "--json"], env=env, capture_output=True, text=True
    )
    try:
        row = json.loads(show.stdout)
    except json.JSONDecodeError:
        return [*warnings, f"loopline data show: no JSON: {show.stdout[-300:]}{show.stderr}"]
    if (row.get("file_count"), row.get("total_size")) != (files, total):
        warnings.append(
            f"loopline {NAME}@{version_no}: {row.get('file_count')} files, "
            f"{row.get('total_size')} bytes; expected {files} files, {total} bytes"
        )
    return warnings


def dvc_outs(project: Path) -> dict[str, Any]:
    text = (project / "data.dvc").read_text()
    fields = dict(re.findall(r"^\s*-?\s*(md5|size|nfiles): (\S+)$", text, re.M))
    return {"md5": fields.get("md5"), "size": int(fields.get("size", -1))} | {
        "nfiles": int(fields.get("nfiles", -1))
    }


def check_dvc(
    project: Path, label: str, files: int, total: int, before: str | None = None
) -> list[str]:
    outs = dvc_outs(project)
    warnings = []
    if (outs["nfiles"], outs["size"]) != (files, total):
        warnings.append(
            f"dvc {label}: data.dvc lists {outs['nfiles']} files, {outs['size']} bytes; "
            f"expected {files} files, {total} bytes"
        )
    if before is not None and outs["md5"] == before:
        warnings.append(f"dvc {label}: the directory digest did not change")
    return warnings


def dvc_link_type(project: Path, rel: str) -> str:
    """How DVC's cache holds one workspace file: same inode (hardlink), symlink, or a
    separate file (copy; or reflink, which ext4 cannot do)."""
    work = project / "data" / rel
    if work.is_symlink():
        return "symlink"
    md5 = hashlib.md5(work.read_bytes()).hexdigest()
    cached = project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    if not cached.exists():
        return "unknown (cache object not found)"
    if cached.stat().st_ino == work.stat().st_ino:
        return "hardlink"
    configured = subprocess.run(
        [str(BIN / "dvc"), "config", "cache.type"], cwd=project, capture_output=True, text=True
    ).stdout.strip()
    return f"copy (separate inode; cache.type {configured or 'unset: default reflink,copy'})"


def set_aside(path: Path, trash: Path) -> None:
    """Move ``path`` out of the way; the trash is deleted after the last timed command. On an
    ext4 without a journal, as on our VM, every new inode is checked against recently deleted
    ones, so deleting 20,000 files just before a timed add would slow that add down."""
    if path.exists() or path.is_symlink():
        trash.mkdir(exist_ok=True)
        path.rename(trash / f"{len(list(trash.iterdir())):03d}-{path.name}")


def fresh_dvc_project(project: Path, site_cache: Path, env: dict[str, str], trash: Path) -> None:
    for leftover in (".dvc", "data.dvc", ".dvcignore", ".gitignore"):
        set_aside(project / leftover, trash)
    set_aside(site_cache, trash)
    dvc = str(BIN / "dvc")
    for cmd in (
        [dvc, "init", "--no-scm", "-q"],
        [dvc, "config", "core.check_update", "false"],
        [dvc, "config", "core.analytics", "false"],
    ):
        subprocess.run(cmd, cwd=project, env=env, capture_output=True, check=True)


def fresh_loopline_ws(ws: Path, env: dict[str, str], trash: Path) -> None:
    set_aside(ws, trash)
    subprocess.run(
        [str(BIN / "loopline"), "init", str(ws)], env=env, capture_output=True, check=True
    )


# -- one run -----------------------------------------------------------------------------------
def one_run(
    run: int,
    args: argparse.Namespace,
    root: Path,
    plan: list[tuple[str, int]],
    env: dict[str, str],
) -> dict[str, Any]:
    ll_data, ll_ws = root / "loopline" / "data", root / "loopline" / "ws"
    project = root / "dvc"
    site_cache = Path(env["DVC_SITE_CACHE_DIR"])
    files, total = len(plan), sum(size for _, size in plan)
    result: dict[str, Any] = {"warnings": []}
    warn: list[str] = result["warnings"]

    fresh_loopline_ws(ll_ws, env, root / "trash")
    fresh_dvc_project(project, site_cache, env, root / "trash")
    waited = settle(all_files(ll_data) + all_files(project / "data"), 2.0)
    log(f"run {run + 1}: waited {waited:.1f} s for the tree to age")

    loopline = [str(BIN / "loopline"), "--home", str(ll_ws), "data", "add", str(ll_data)]
    loopline += ["--name", NAME]
    dvc = [str(BIN / "dvc"), "add", "data"]
    order = ("loopline", "dvc") if run % 2 == 0 else ("dvc", "loopline")

    def add(tool: str, phase: str, hashed: int, before: str | None = None) -> None:
        if tool == "loopline":
            seconds, cpu, out = timed(loopline, env=env, cache=args.cache)
            result[f"loopline_{phase}_s"] = seconds
            result[f"loopline_{phase}_cpu_s"] = cpu
            result[f"loopline_{phase}_sync_after_s"] = sync_seconds()
            said = [line for line in out.splitlines() if " created: " in line]
            result[f"loopline_{phase}_output"] = said[0] if said else out.strip()[-200:]
            version_no = 1 if phase == "first_add" else 2
            warn.extend(check_loopline(out, version_no, files, total, hashed, ll_ws, env))
        else:
            seconds, cpu, _ = timed(dvc, env=env, cwd=project, cache=args.cache)
            result[f"dvc_{phase}_s"] = seconds
            result[f"dvc_{phase}_cpu_s"] = cpu
            result[f"dvc_{phase}_sync_after_s"] = sync_seconds()
            warn.extend(check_dvc(project, phase, files, total, before))
        log(f"  {tool} {phase}: {seconds:.2f} s wall, {cpu:.2f} s CPU")

    for tool in order:
        add(tool, "first_add", files)
    result["dvc_link_type"] = dvc_link_type(project, plan[0][0])
    first_md5 = dvc_outs(project)["md5"]

    changed = change_files(plan, [ll_data, project / "data"], args.changed, SEED + 100 + run)
    files, total = len(plan), sum(size for _, size in plan)
    result["changed_files"] = changed
    result["waited_after_change_s"] = settle(
        [d / rel for d in (ll_data, project / "data") for rel in changed], 1.1
    )
    for tool in order:
        add(tool, "re_add", args.changed, first_md5)

    seconds, cpu, out = timed(
        [PYTHON, __file__, "--checksum-floor", str(ll_data)], env=env, cache=args.cache
    )
    counted = json.loads(out.strip().splitlines()[-1])
    if (counted["files"], counted["bytes"]) != (files, total):
        warn.append(f"checksum floor saw {counted}, expected {files} files, {total} bytes")
    result["checksum_floor_s"] = seconds
    result["checksum_floor_cpu_s"] = cpu
    log(f"  checksum floor: {seconds:.2f} s wall, {cpu:.2f} s CPU")
    result["order"] = list(order)
    return result


# -- reporting ---------------------------------------------------------------------------------
def fs_facts(path: Path) -> dict[str, Any]:
    """``stat -f`` type, mount options and, for ext4, whether it has a journal."""
    facts: dict[str, Any] = {}
    try:
        facts["stat_f_type"] = subprocess.run(
            ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True
        ).stdout.strip()
        device, mountpoint, fstype = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE,TARGET,FSTYPE", "-T", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[:3]
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if fields[0] == device and fields[1] == mountpoint:
                facts["mount_options"] = fields[3]
        if fstype == "ext4":
            name = os.path.basename(device)
            facts["ext4_journal"] = any(
                p.name.startswith(f"{name}-") for p in Path("/proc/fs/jbd2").glob("*")
            )
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    return facts


def versions() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "loopline": version("loopline"),
        "dvc": version("dvc"),
        "dvc-data": version("dvc-data"),
        "blake3": version("blake3"),
        "numpy": version("numpy"),
    }


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


PHASES = ("first_add", "re_add")


def summarise(runs: list[dict[str, Any]], startup: dict[str, Any]) -> dict[str, Any]:
    keys = ["checksum_floor_s", "checksum_floor_cpu_s"] + [
        f"{tool}_{phase}{suffix}"
        for tool in ("loopline", "dvc")
        for phase in PHASES
        for suffix in ("_s", "_cpu_s", "_sync_after_s")
    ]
    med = {key: median_of(runs, key) for key in keys}

    def ratio(suffix: str) -> dict[str, float]:
        return {p: med[f"dvc_{p}{suffix}"] / med[f"loopline_{p}{suffix}"] for p in PHASES}

    ratios = ratio("_s")
    return {
        "medians_s": med,
        "ratios_dvc_over_loopline": ratios,
        "ratios_cpu_dvc_over_loopline": ratio("_cpu_s"),
        "ratios_with_sync_after": {
            p: (med[f"dvc_{p}_s"] + med[f"dvc_{p}_sync_after_s"])
            / (med[f"loopline_{p}_s"] + med[f"loopline_{p}_sync_after_s"])
            for p in PHASES
        },
        "goals": {
            p: {"goal": GOALS[p], "ratio": ratios[p], "met": ratios[p] >= GOALS[p]} for p in PHASES
        },
        "loopline_first_add_over_floor": med["loopline_first_add_s"] / med["checksum_floor_s"],
        "dvc_first_add_over_floor": med["dvc_first_add_s"] / med["checksum_floor_s"],
        "startup_median": startup,
    }


def print_report(
    args: argparse.Namespace, files: int, total: int, summary: dict[str, Any], runs: list
) -> None:
    med, ratios = summary["medians_s"], summary["ratios_dvc_over_loopline"]
    cpu_ratios = summary["ratios_cpu_dvc_over_loopline"]
    print()
    print(
        f"{files:,} files, {total / MB:,.1f} MB, {args.changed} changed, {len(runs)} run(s), "
        f"{args.cache} cache; seconds per CLI command (median over runs): wall clock, and "
        "CPU (user + system, all threads) in brackets"
    )
    head = f"{'measurement':42}  {'Loopline':>15}  {'DVC':>15}  {'DVC/Loopline':>14}  goal (wall)"
    print(head)
    print("-" * len(head))
    labels = {"first_add": "first add", "re_add": f"re-add, {args.changed} changed"}
    for p in PHASES:
        verdict = "PASS" if ratios[p] >= GOALS[p] else "MISS"
        ll = f"{med[f'loopline_{p}_s']:6.2f} ({med[f'loopline_{p}_cpu_s']:6.2f})"
        dv = f"{med[f'dvc_{p}_s']:6.2f} ({med[f'dvc_{p}_cpu_s']:6.2f})"
        both = f"{ratios[p]:5.1f}x ({cpu_ratios[p]:4.1f}x)"
        print(f"{labels[p]:42}  {ll:>15}  {dv:>15}  {both:>14}  >= {GOALS[p]:.0f}x {verdict}")
        lsync = med[f"loopline_{p}_s"] + med[f"loopline_{p}_sync_after_s"]
        dsync = med[f"dvc_{p}_s"] + med[f"dvc_{p}_sync_after_s"]
        sync_row = f"{lsync:6.2f}{'':9}  {dsync:6.2f}{'':9}  {dsync / lsync:5.1f}x"
        print(f"{'  + sync right after':42}  {sync_row}")
    floor = f"{med['checksum_floor_s']:6.2f} ({med['checksum_floor_cpu_s']:6.2f})"
    print(f"{'checksum floor (parallel BLAKE3)':42}  {floor:>15}")
    for label, s in summary["startup_median"].items():
        print(f"{label + ', median of 5':42}  {s['wall_s']:6.3f} ({s['cpu_s']:6.3f})")
    print(f"DVC cache link type: {runs[0]['dvc_link_type']}")
    print(f"Loopline said: {runs[0]['loopline_first_add_output']!r}")
    print(f"               {runs[0]['loopline_re_add_output']!r}")
    for r in runs:
        for w in r["warnings"]:
            print(f"WARNING: {w}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--total-mb", type=float, default=600.0, help="decimal MB (10^6 bytes)")
    parser.add_argument("--changed", type=int, default=10, help="files rewritten before re-add")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--dirs", type=int, default=200, help="subdirectories")
    parser.add_argument("--cache", choices=("warm", "cold"), default="warm")
    parser.add_argument("--workdir", type=Path, help="scratch parent (default: the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the trees and stores")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--checksum-floor", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.checksum_floor is not None:
        checksum_floor(args.checksum_floor)
        return
    if args.cache == "cold" and os.geteuid() != 0:
        parser.error("--cache cold drops the page cache and needs root")

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="loopline-dv-", dir=args.workdir))
    env = env_for_tools(root / "dvc-site-cache")
    started = time.time()
    try:
        total = int(args.total_mb * MB)
        plan = plan_tree(args.files, total, args.dirs, SEED)
        log(f"writing {args.files:,} files, {total / MB:,.1f} MB, twice, under {root}")
        t0 = time.perf_counter()
        write_tree(plan, [root / "loopline" / "data", root / "dvc" / "data"], SEED)
        os.sync()
        log(f"  written and synced in {time.perf_counter() - t0:.1f} s")
        load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
        startup = startup_times(env, root)
        log("start-up: " + ", ".join(f"{k} {v['wall_s']:.3f} s" for k, v in startup.items()))
        runs = [one_run(run, args, root, plan, env) for run in range(args.runs)]
        machine = describe(root)
        machine.update(fs_facts(root))
        machine["loadavg_before"] = load_before
        summary = summarise(runs, startup)
        print_report(args, args.files, total, summary, runs)
        print(f"machine: {json.dumps(machine)}")
        print(f"versions: {json.dumps(versions())}")
        if args.json is not None:
            report = {
                "benchmark": "data_versioning",
                "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
                "seconds_total": round(time.time() - started, 1),
                "parameters": {
                    "files": args.files,
                    "total_bytes": total,
                    "changed": args.changed,
                    "runs": args.runs,
                    "dirs": args.dirs,
                    "cache": args.cache,
                    "seed": SEED,
                },
                "machine": machine,
                "versions": versions(),
                "commands": {
                    "loopline": f"loopline --home WS data add DIR --name {NAME}",
                    "dvc": "dvc init --no-scm; dvc add data",
                    "checksum_floor": "python benchmarks/data_versioning.py --checksum-floor DIR",
                },
                "summary": summary,
                "runs": runs,
            }
            args.json.write_text(json.dumps(report, indent=2) + "\n")
            log(f"wrote {args.json}")
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
