"""The ``ray`` executor: each step attempt runs as one Ray task.

``--executor ray --ray-address auto`` joins a running cluster, ``ray://host:port`` a remote one
through Ray Client, and no address starts a local instance for the run (stopped afterwards).
The task receives the step function and its resolved inputs pickled with cloudpickle, exactly
as a local worker does, so a pipeline gives the same outputs on both executors; caching,
tracking, retries and timeouts stay with the runner on the driver. A timeout cancels the task
with ``force=True``, which kills the worker process running it.

Tasks must import the step's module on the cluster: a local instance gets the driver's
``sys.path`` and working directory; a remote cluster needs the project installed there (or a
Ray ``runtime_env`` with ``working_dir``, passed through ``runtime_env=``).
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import Future
from typing import Any

from loopline.errors import ConfigError
from loopline.pipelines.executors import StepTask, settle

__all__ = ["RayExecutor"]


def _run(payload: bytes) -> bytes:
    """What a Ray worker runs: the same call a local worker makes."""
    from loopline.pipelines.worker import call

    return call(payload)


class RayExecutor:
    """Steps as Ray tasks, one CPU each unless the step's ``resources`` say otherwise."""

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        runtime_env: dict[str, Any] | None = None,
        **_options: Any,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("the ray executor needs Ray: pip install 'loopline[ray]'") from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            env = dict(runtime_env or {})
            if address in (None, "", "local"):
                variables = dict(env.get("env_vars", {}))
                variables.setdefault("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
                variables.update({k: v for k, v in os.environ.items() if k.startswith("LOOPLINE_")})
                env["env_vars"] = variables
                ray.init(
                    num_cpus=workers or os.cpu_count() or 1,
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env=env,
                )
            else:
                ray.init(address=address, runtime_env=env or None, log_to_driver=False)
            self._started = True
        self.capacity = float(ray.cluster_resources().get("CPU", 1.0))
        self._remote = ray.remote(max_retries=0)(_run)
        self._refs: dict[int, Any] = {}
        self._lock = threading.Lock()

    def submit(self, task: StepTask) -> Future[Any]:
        import cloudpickle

        options: dict[str, Any] = {"num_cpus": task.resources.cpus or 1, "name": task.key}
        if task.resources.memory:
            options["memory"] = task.resources.memory
        payload = cloudpickle.dumps((task.fn, task.args, task.kwargs))
        ref = self._remote.options(**options).remote(payload)
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            self._refs[id(future)] = ref
        ref.future().add_done_callback(lambda done: self._resolve(future, done))
        return future

    def _resolve(self, future: Future[Any], done: Future[Any]) -> None:
        with self._lock:
            self._refs.pop(id(future), None)
        if future.done():
            return
        try:
            answer = done.result()
        except BaseException as exc:  # the task itself was lost or cancelled
            future.set_exception(exc)
            return
        settle(future, answer)

    def cancel(self, future: Future[Any]) -> None:
        with self._lock:
            ref = self._refs.pop(id(future), None)
        if ref is not None:
            self._ray.cancel(ref, force=True)

    def shutdown(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False
