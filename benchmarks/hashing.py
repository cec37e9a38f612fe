"""Hashing throughput: BLAKE3 as Loopline uses it vs single-threaded BLAKE3 vs SHA-256.

All hashers read the same in-memory random buffer, fed in chunks of the blob store's CHUNK_SIZE
(as ``put_stream`` feeds them), so this isolates the CPU cost of the digest from any I/O.

    python benchmarks/hashing.py [--size-mb 512] [--chunk-mb 4] [--reps 7] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Callable

import blake3

from loopline.blobs.cas import CHUNK_SIZE, _hasher
from machine import MiB, describe, print_table, summary


def _chunked(factory: Callable[[], object]) -> Callable[[memoryview, int], str]:
    def run(data: memoryview, chunk: int) -> str:
        h = factory()
        for start in range(0, len(data), chunk):
            h.update(data[start : start + chunk])  # type: ignore[attr-defined]
        return h.hexdigest()  # type: ignore[attr-defined]

    return run


HASHERS: dict[str, tuple[Callable[[memoryview, int], str], str]] = {
    "blake3 (Loopline: _hasher, AUTO)": (_chunked(_hasher), "the store's hasher"),
    "blake3 max_threads=1": (_chunked(blake3.blake3), "single-threaded"),
    "hashlib.sha256": (_chunked(hashlib.sha256), "OpenSSL"),
}


def measure(size: int, chunk: int, reps: int) -> dict[str, list[float]]:
    data = memoryview(os.urandom(size))
    results: dict[str, list[float]] = {name: [] for name in HASHERS}
    for fn, _ in HASHERS.values():
        fn(data[: 64 * MiB], chunk)  # warm-up: thread pool start, page faults, CPU clocks
    for rep in range(reps):
        # Alternate the order so drift (thermal, noisy neighbours) does not favour one hasher.
        names = list(HASHERS) if rep % 2 == 0 else list(reversed(HASHERS))
        for name in names:
            start = time.perf_counter()
            HASHERS[name][0](data, chunk)
            results[name].append(size / MiB / (time.perf_counter() - start))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=512, help="MiB of data (default 512)")
    parser.add_argument(
        "--chunk-mb",
        type=float,
        default=CHUNK_SIZE / MiB,
        help=f"MiB per update() call (default CHUNK_SIZE = {CHUNK_SIZE / MiB:g})",
    )
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions (default 7)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    size, chunk = args.size_mb * MiB, int(args.chunk_mb * MiB)

    results = measure(size, chunk, args.reps)
    stats = {name: summary(samples) for name, samples in results.items()}
    sha = stats["hashlib.sha256"]["median"]
    env = describe()
    if args.json:
        doc = {"size_mib": args.size_mb, "chunk_mib": chunk / MiB, "reps": args.reps}
        print(json.dumps({**doc, "env": env, "mib_per_s": stats, "samples": results}, indent=2))
        return
    print(f"hashing {args.size_mb} MiB in memory, {chunk / MiB:g} MiB chunks, {args.reps} reps")
    print(", ".join(f"{k}: {v}" for k, v in env.items()))
    print_table(
        [
            (name, s, f"{s['median'] / sha:.1f}x sha256; {HASHERS[name][1]}")
            for name, s in stats.items()
        ],
        "MiB/s",
    )


if __name__ == "__main__":
    main()
