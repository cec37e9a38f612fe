"""Profiling speed: ``profile_table`` on a generated 1,000,000-row x 25-column table.

The table mixes what real feature tables hold: 8 float columns (some with nulls), 7 integer
columns, 7 string categoricals (3 to 50,000 distinct values, one stored as a dictionary like a
pandas Categorical) and 3 timestamps, from numpy with a fixed seed, stored with ``write_parquet``
(as ``loopline data add`` would). The goal is a median under 3 s on 2 cores.

    python benchmarks/profile_table.py [--rows 1000000] [--reps 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from loopline.data.tabular import profile_table, write_parquet
from machine import describe, summary

SEED = 20240607
CARDINALITIES = (3, 12, 50, 200, 1_000, 10_000, 50_000)


def make_table(rows: int) -> pa.Table:
    rng = np.random.default_rng(SEED)
    columns: dict[str, pa.Array] = {}
    for i in range(8):
        values = rng.normal(loc=i * 10, scale=1 + i, size=rows)
        mask = rng.random(rows) < 0.05 * (i % 3)  # 0 %, 5 % or 10 % missing
        columns[f"f{i}"] = pa.array(values, mask=mask)
    for i in range(7):
        columns[f"i{i}"] = pa.array(rng.integers(0, 10 ** (i + 1), size=rows))
    for i, card in enumerate(CARDINALITIES):
        vocab = pa.array([f"cat_{i}_{v}" for v in range(card)])
        codes = pa.array(rng.zipf(1.3, size=rows) % card, pa.int32())
        category = pa.DictionaryArray.from_arrays(codes, vocab)
        columns[f"s{i}"] = category if i == 0 else category.cast(pa.string())
    start = np.datetime64("2020-01-01T00:00:00", "s").astype(np.int64)
    for i in range(3):
        seconds = start + rng.integers(0, 4 * 365 * 86400, size=rows)
        columns[f"t{i}"] = pa.array(seconds, pa.int64()).cast(pa.timestamp("s"))
    return pa.table(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (default 1,000,000)")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args()

    table = make_table(args.rows)
    with tempfile.TemporaryDirectory(prefix="loopline-bench-profile-") as tmp:
        path = Path(tmp) / "table.parquet"
        start = time.perf_counter()
        write_parquet(table, path)
        write_s = time.perf_counter() - start
        del table
        size_mib = path.stat().st_size / 2**20
        profile_table(path)  # warm-up: page cache, DuckDB's first-query set-up
        samples, cpu = [], []
        for _ in range(args.reps):
            start, before = time.perf_counter(), os.times()
            profile = profile_table(path)
            samples.append(time.perf_counter() - start)
            after = os.times()  # CPU of every thread: a figure other load does not inflate
            cpu.append(after.user - before.user + after.system - before.system)
    env = describe()
    stats = summary(samples)
    if args.json:
        doc = {"rows": args.rows, "columns": len(profile["columns"]), "parquet_mib": size_mib}
        doc |= {"write_s": write_s, "profile_s": stats, "profile_cpu_s": summary(cpu)}
        print(json.dumps({**doc, "samples": samples, "env": env}, indent=2))
        return
    print(f"profile_table: {args.rows:,} rows x {len(profile['columns'])} columns")
    print(", ".join(f"{k}: {v}" for k, v in env.items()))
    print(f"write_parquet: {write_s:.2f} s ({size_mib:.0f} MiB Parquet)")
    print(
        f"profile_table: median {statistics.median(samples):.2f} s "
        f"(min {stats['min']:.2f}, max {stats['max']:.2f}, {args.reps} runs); goal < 3 s"
    )
    print(f"profile_table CPU time: median {statistics.median(cpu):.2f} s (all threads)")
    s3 = profile["columns"]["s3"]
    print(f"e.g. s3: distinct {s3['distinct']} (approximate), top {s3['top'][0]}")


if __name__ == "__main__":
    main()
