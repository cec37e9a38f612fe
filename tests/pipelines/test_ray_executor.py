"""The same pipeline on the local executor and on Ray (a local instance the test starts and
stops) gives identical output digests; a step failing on Ray is retried and a timed-out Ray
task is stopped, both by the runner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loopline.pipelines import run
from loopline.pipelines.ray_executor import RayExecutor
from loopline.workspace import Workspace
from tests.pipelines import example_pipelines as ex

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_executor() -> Iterator[RayExecutor]:
    executor = RayExecutor(workers=2)
    yield executor
    executor.shutdown()


def _digests(result) -> dict[str, dict[str, str]]:
    return {
        name: {out: stored.digest for out, stored in step.outputs.items()}
        for name, step in result.steps.items()
    }


def test_local_and_ray_produce_identical_outputs(ws: Workspace, ray_executor: RayExecutor) -> None:
    local = run(ex.train_pipeline, {"n": 30}, cache=False).raise_for_status()
    on_ray = run(ex.train_pipeline, {"n": 30}, executor=ray_executor, cache=False)
    on_ray.raise_for_status()
    assert on_ray.executed_steps == local.executed_steps
    assert _digests(on_ray) == _digests(local)
    assert all(step.state == "finished" for step in on_ray.steps.values())


def test_retries_and_timeouts_work_the_same_on_ray(
    ws: Workspace, ray_executor: RayExecutor, tmp_path
) -> None:
    counter = tmp_path / "attempts.txt"
    flaky = run(ex.flaky_pipeline, {"counter": str(counter)}, executor=ray_executor, cache=False)
    assert (flaky.status, counter.read_text(), flaky.steps["flaky"].attempts) == (
        "FINISHED",
        "3",
        3,
    )
    slow = run(ex.timeout_pipeline, {"seconds": 60.0}, executor=ray_executor, cache=False)
    assert (slow.status, slow.failed_step) == ("FAILED", "sleepy")
    assert "timeout of 0.5s" in slow.error
    assert slow.steps["after"].state == "skipped"


def test_the_cli_name_ray_reaches_this_executor(ray_executor: RayExecutor) -> None:
    from loopline.pipelines.executors import make_executor

    joined = make_executor("ray", workers=2)  # Ray is running: joins it, starts nothing
    assert isinstance(joined, RayExecutor) and joined.capacity == ray_executor.capacity
    joined.shutdown()  # did not start Ray, so leaves it running
    import ray

    assert ray.is_initialized()
