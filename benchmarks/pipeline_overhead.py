"""Per-step overhead of the pipeline runner on the local executor.

A pipeline of ``--steps`` trivial steps (``--shape chain``: each step takes the previous one's
output; ``wide``: one source fanned out to the rest) runs on a fresh workspace with the cache
off, so every step really runs and is fully recorded: child run, params, tags, output artifact,
lineage edges. Overhead per step = (wall time - time inside step functions) / steps; the work
is a few microseconds, so this is nearly all bookkeeping and transport. The worker pool is
started (and warmed with one run) before timing: start-up is paid once per process, not per
step. The median of ``--reps`` runs is reported; a cached re-run is timed too.

    python benchmarks/pipeline_overhead.py [--steps 200] [--shape chain|wide] [--reps 3]
        [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loopline as ll
from loopline.pipelines import pipeline, run, step
from loopline.pipelines.executors import shared_local_executor
from loopline.workspace import init_workspace
from machine import describe


@step
def source(seed: int) -> int:
    return seed


@step
def increment(value: int, i: int) -> int:
    return value + i


def make_pipeline(steps: int, shape: str):
    @pipeline(name=f"{shape}_{steps}")
    def trivial(seed: int = 0):
        value = source(seed)
        for i in range(steps - 1):
            if shape == "chain":
                value = increment(value, i)
            else:
                increment(value, i)

    return trivial


def measure(
    steps: int, shape: str, workers: int, reps: int, executor: object = "local"
) -> dict[str, object]:
    flow = make_pipeline(steps, shape)
    if executor == "local":
        shared_local_executor(workers)
    options = {"workers": workers, "executor": executor}
    walls, cached = [], []
    with tempfile.TemporaryDirectory(prefix="loopline-bench-") as tmp:
        ll.use_workspace(init_workspace(Path(tmp) / "ws"))
        run(make_pipeline(4, shape), {}, cache=False, **options)  # warm the workers
        for rep in range(reps):
            started = time.perf_counter()
            result = run(flow, {"seed": rep}, cache=False, **options)
            walls.append(time.perf_counter() - started)
            assert result.status == "FINISHED", result.error
            started = time.perf_counter()
            again = run(flow, {"seed": rep}, **options)
            cached.append(time.perf_counter() - started)
            assert len(again.cached_steps) == steps
        ll.use_workspace(None)
    wall = statistics.median(walls)
    return {
        "executor": "local" if executor == "local" else "ray",
        "steps": steps,
        "shape": shape,
        "workers": workers,
        "reps": reps,
        "wall_s": walls,
        "median_wall_s": wall,
        "overhead_ms_per_step": wall / steps * 1000,
        "cached_wall_s": cached,
        "cached_ms_per_step": statistics.median(cached) / steps * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--shape", choices=["chain", "wide", "both"], default="both")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", choices=["local", "ray"], default="local")
    parser.add_argument("--json", action="store_true", help="Print one JSON document.")
    args = parser.parse_args()
    shapes = ["chain", "wide"] if args.shape == "both" else [args.shape]
    executor: object = "local"
    if args.executor == "ray":
        from loopline.pipelines.ray_executor import RayExecutor

        executor = RayExecutor(workers=args.workers)  # a local Ray instance, for this run
    try:
        results = [measure(args.steps, s, args.workers, args.reps, executor) for s in shapes]
    finally:
        if executor != "local":
            executor.shutdown()  # type: ignore[attr-defined]
    if args.json:
        print(json.dumps({"results": results, "machine": describe()}, indent=2))
        return
    for r in results:
        print(
            f"{r['executor']}: {r['shape']:>5} x {r['steps']} steps, {r['workers']} workers: "
            f"{r['overhead_ms_per_step']:.2f} ms/step executed "
            f"(median wall {r['median_wall_s']:.2f}s of {r['reps']}), "
            f"{r['cached_ms_per_step']:.2f} ms/step cached"
        )


if __name__ == "__main__":
    main()
