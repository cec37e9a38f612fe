"""Pipelines: steps and DAGs in plain Python, cached, tracked and run on an executor.

``@ll.step`` makes a function a step, ``@ll.pipeline`` composes steps by calling them, and
``run`` executes the graph (see docs/pipelines.md). Names load lazily so that importing this
package, which every worker process does, stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loopline.pipelines.steps import Pipeline, Resources, Step, StepOutput, pipeline, step

if TYPE_CHECKING:
    from loopline.pipelines.executors import Executor, LocalExecutor, StepTask, make_executor
    from loopline.pipelines.results import PipelineFailed, PipelineRun, StepRun, StepTimeout
    from loopline.pipelines.runner import resume, run, run_target

__all__ = [
    "Executor",
    "LocalExecutor",
    "Pipeline",
    "PipelineFailed",
    "PipelineRun",
    "Resources",
    "Step",
    "StepOutput",
    "StepRun",
    "StepTask",
    "StepTimeout",
    "make_executor",
    "pipeline",
    "resume",
    "run",
    "run_target",
    "step",
]

_LAZY = {
    "Executor": "executors",
    "LocalExecutor": "executors",
    "StepTask": "executors",
    "make_executor": "executors",
    "PipelineFailed": "results",
    "PipelineRun": "results",
    "StepRun": "results",
    "StepTimeout": "results",
    "resume": "runner",
    "run": "runner",
    "run_target": "runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"loopline.pipelines.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'loopline.pipelines' has no attribute {name!r}")
