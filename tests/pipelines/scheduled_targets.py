"""Targets the scheduler tests launch: plain functions that leave a trace a test can count."""

from __future__ import annotations

from pathlib import Path

import loopline as ll
from loopline.pipelines import pipeline, step

__all__ = ["append_line", "append_pipeline", "fail", "failing_pipeline", "not_callable"]

not_callable = 42


def append_line(out: str, **params: str) -> None:
    """Append one line naming the fire that launched this run (from the run's tags) and the
    params, so a test counts launches per fire."""
    active = ll.active_run()
    assert active is not None, "the scheduler launches a function inside a tracked run"
    tags = ll.get_run(active.run_id).tags
    extra = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    with Path(out).open("a") as f:
        f.write(f"{tags['loopline.fire_key']} {tags['loopline.trigger']} {extra}\n")
    ll.log_metric("launched", 1.0)


def fail(**params: str) -> None:
    raise RuntimeError("the target failed on purpose")


@step
def _append(out: str, note: str) -> str:
    with Path(out).open("a") as f:
        f.write(f"pipeline {note}\n")
    return note


@step
def _explode(note: str) -> str:
    raise RuntimeError(f"step failed on purpose ({note})")


@pipeline
def append_pipeline(out: str, note: str = "-"):
    """A one-step pipeline: the scheduler must hand it to the pipeline runner."""
    _append(out, note)


@pipeline
def failing_pipeline(note: str = "-"):
    _explode(note)
