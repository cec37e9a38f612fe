"""Blob store throughput on the local backend, as a fraction of a raw copy of the same file.

"raw" is the same I/O as ``BlobStore.put_file`` minus the content store: a sequential copy of
the source file into a temp file in the same directory tree, through one reusable CHUNK_SIZE
buffer (``readinto`` + ``write``), then ``fsync`` and ``os.replace``. No hashing, no per-chunk
allocation. ``get_to_path`` also fsyncs its output before the rename, so the same baseline
serves both; the copy without fsync is printed for reference.

Before every timed run the page cache is dropped (``sync; echo 3 > /proc/sys/vm/drop_caches``);
if that is not permitted, the file about to be read is evicted with POSIX_FADV_DONTNEED instead,
and ``--cache warm`` reads it into the cache first. The mode used is printed.

    python benchmarks/blob_put.py [--size-mb 1024] [--reps 7] [--cache cold|warm] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from loopline.blobs.cas import CHUNK_SIZE, BlobStore
from loopline.blobs.local import LocalBackend
from machine import MiB, describe, print_table, summary

DEFAULT_DIR = Path(__file__).resolve().parent / ".data"


def make_source(path: Path, size: int) -> None:
    """Random (incompressible) bytes, written once and reused while the size matches."""
    if path.exists() and path.stat().st_size == size:
        return
    with path.open("wb") as out:
        left = size
        while left:
            out.write(os.urandom(min(left, 64 * MiB)))
            left -= min(left, 64 * MiB)
        out.flush()
        os.fsync(out.fileno())


def raw_copy(src: Path, dest: Path, fsync: bool) -> None:
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix="raw-")
    with src.open("rb", buffering=0) as fin, os.fdopen(fd, "wb", buffering=0) as fout:
        while n := fin.readinto(buf):
            fout.write(view[:n])
        if fsync:
            os.fsync(fout.fileno())
    os.replace(tmp, dest)


def drop_caches() -> bool:
    """Empty the whole page cache; False if this process may not."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3")
    except OSError:
        return False
    return True


def prepare_read(path: Path, cache: str) -> None:
    """Make the next read of ``path`` cold (or warm, for ``--cache warm``)."""
    if cache == "warm":
        with path.open("rb", buffering=0) as f:
            while f.read(CHUNK_SIZE):
                pass
        return
    if not drop_caches():
        os.sync()
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def run(size_mb: int, reps: int, cache: str, data_dir: Path, keep: bool) -> dict:
    size = size_mb * MiB
    data_dir.mkdir(parents=True, exist_ok=True)
    src = data_dir / f"source-{size_mb}MiB.bin"
    make_source(src, size)
    work = Path(tempfile.mkdtemp(dir=data_dir, prefix="run-"))
    try:
        put_store = BlobStore(LocalBackend(work / "put-store"))
        get_store = BlobStore(LocalBackend(work / "get-store"))  # holds the blob read back
        digest = get_store.put_file(src)
        blob = get_store.backend.path_for(f"{digest[:2]}/{digest[2:]}")  # type: ignore[attr-defined]

        def put() -> None:
            assert put_store.put_file(src) == digest

        ops: dict[str, tuple[Path, Callable[[], None]]] = {
            "raw copy + fsync": (src, lambda: raw_copy(src, work / "raw.out", fsync=True)),
            "put_file": (src, put),
            "raw copy, no fsync": (blob, lambda: raw_copy(blob, work / "raw.out", fsync=False)),
            "get_to_path": (blob, lambda: get_store.get_to_path(digest, work / "get.out")),
        }
        cold_mode = "drop_caches" if drop_caches() else "posix_fadvise(DONTNEED) on the input"
        samples: dict[str, list[float]] = {name: [] for name in ops}
        for rep in range(reps):
            # Alternate the order so slow drift in the disk does not favour one side.
            for name in list(ops) if rep % 2 == 0 else list(reversed(ops)):
                put_store.delete(digest)  # every put stores a new blob, as a first put does
                for leftover in ("raw.out", "get.out"):
                    (work / leftover).unlink(missing_ok=True)
                path, fn = ops[name]
                prepare_read(path, cache)
                start = time.perf_counter()
                fn()
                samples[name].append(size / MiB / (time.perf_counter() - start))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not keep:
            src.unlink(missing_ok=True)
    return {
        "size_mib": size_mb,
        "reps": reps,
        "chunk_mib": CHUNK_SIZE / MiB,
        "cache": cache if cache == "warm" else f"cold ({cold_mode})",
        "env": describe(data_dir),
        "mib_per_s": {name: summary(s) for name, s in samples.items()},
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size, MiB (default 1024)")
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions (default 7)")
    parser.add_argument("--cache", choices=["cold", "warm"], default="cold")
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help=f"scratch directory (default {DEFAULT_DIR})"
    )
    parser.add_argument("--keep", action="store_true", help="keep the source file for reuse")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    res = run(args.size_mb, args.reps, args.cache, args.dir.resolve(), args.keep)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    stats = res["mib_per_s"]
    put_ratio = stats["put_file"]["median"] / stats["raw copy + fsync"]["median"]
    get_ratio = stats["get_to_path"]["median"] / stats["raw copy + fsync"]["median"]
    print(
        f"{res['size_mib']} MiB random file, {res['chunk_mib']:g} MiB chunks, {res['reps']} reps, "
        f"page cache: {res['cache']}"
    )
    print(", ".join(f"{k}: {v}" for k, v in res["env"].items()))
    print_table(
        [
            ("raw copy + fsync", stats["raw copy + fsync"], "baseline for put_file"),
            ("put_file", stats["put_file"], f"{put_ratio:.2f} x raw (goal >= 0.70)"),
            ("raw copy, no fsync", stats["raw copy, no fsync"], "for reference"),
            ("get_to_path", stats["get_to_path"], f"{get_ratio:.2f} x raw + fsync"),
        ],
        "MiB/s",
    )


if __name__ == "__main__":
    main()
