"""Where step functions run: the :class:`Executor` interface and the ``local`` executor.

The runner owns everything but running the function: caching, tracking, retries with
backoff, timeouts and how many tasks run at once (it keeps the ``cpus`` of running tasks
within :attr:`Executor.capacity`, so ``submit`` starts a task right away). An executor only has
to run a :class:`StepTask` somewhere, hand back a ``concurrent.futures.Future`` holding the
function's return value or its exception, and stop a running task when asked (a timeout).

Adding an executor: implement the three members below and name the class in
:data:`EXECUTORS`; ``loopline pipeline run --executor NAME`` and ``run(..., executor=NAME)``
then find it. ``make_executor`` passes the CLI's options (``workers``, ``address``) as keyword
arguments; accept ``**options`` and ignore what does not apply.
"""

from __future__ import annotations

import atexit
import importlib
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol, runtime_checkable

from loopline.errors import ConfigError, LooplineError
from loopline.pipelines.steps import Resources

__all__ = [
    "EXECUTORS",
    "Executor",
    "LocalExecutor",
    "StepTask",
    "WorkerDied",
    "make_executor",
    "settle",
    "shared_local_executor",
]


@dataclass
class StepTask:
    """One attempt of one step. ``fn(*args, **kwargs)`` is the whole job: inputs are already
    resolved to values. ``fn`` is the :class:`~loopline.pipelines.steps.Step`, picklable with
    cloudpickle (by reference when importable, by value when defined in ``__main__`` or a
    notebook). ``timeout`` and ``resources`` are for information: the runner enforces the
    timeout (calling :meth:`Executor.cancel`) and the CPU budget."""

    key: str
    """``<node id>#<attempt>``: unique within a pipeline run, handy for logs and task names."""
    fn: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    timeout: float | None = None
    resources: Resources = field(default_factory=Resources)
    modules: dict[str, int] = field(default_factory=dict)
    """Project module name -> file mtime (ns) for the modules the step's code hash read; a
    long-lived worker reloads one that changed since it imported it."""


@runtime_checkable
class Executor(Protocol):
    """Runs step tasks. Implementations: :class:`LocalExecutor` (``local``), ``ray``."""

    capacity: float
    """CPU slots: the runner starts a task only while the ``cpus`` of running tasks fit."""

    def submit(self, task: StepTask) -> Future[Any]:
        """Start ``task`` now; the future resolves to the return value or the exception."""
        ...

    def cancel(self, future: Future[Any]) -> None:
        """Stop the task behind ``future`` at once (its process killed if need be). The runner
        has already recorded the outcome and no longer reads the future."""
        ...

    def shutdown(self) -> None:
        """Release workers; idempotent."""
        ...


class WorkerDied(LooplineError):
    """The worker process running a step exited (crashed, OOM-killed) before answering."""


EXECUTORS: dict[str, str] = {
    "local": "loopline.pipelines.executors:LocalExecutor",
    "ray": "loopline.pipelines.ray_executor:RayExecutor",
}
"""Executor name -> lazy dotted path, so Ray is imported only when chosen."""


def make_executor(name: str, **options: Any) -> Executor:
    """The executor ``name`` names, built with ``options``; ConfigError names the valid ones."""
    if name not in EXECUTORS:
        raise ConfigError(
            f"unknown executor {name!r}; choose one of: {', '.join(sorted(EXECUTORS))}"
        )
    module, _, attr = EXECUTORS[name].partition(":")
    factory = getattr(importlib.import_module(module), attr)
    return factory(**options)  # type: ignore[no-any-return]


def settle(future: Future[Any], answer: bytes) -> None:
    """Resolve ``future`` from what :func:`loopline.pipelines.worker.call` answered: the value,
    or the step's exception with its traceback text as ``loopline_traceback``."""
    import cloudpickle

    try:
        outcome = cloudpickle.loads(answer)
    except Exception as exc:
        future.set_exception(exc)
        return
    if outcome[0] == "ok":
        future.set_result(outcome[1])
    else:
        exc = outcome[1]
        exc.loopline_traceback = outcome[2]
        future.set_exception(exc)


# -- local: a pool of persistent worker processes ---------------------------------------------
def _context() -> dict[str, Any]:
    return {
        "sys_path": list(sys.path),
        "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k.startswith("LOOPLINE_")},
    }


class _Worker:
    """One worker process and the thread that feeds it: the thread takes a task from the shared
    queue, sends it, waits for the answer and resolves the future. Killing the process (a
    timeout) makes that wait fail; the thread then starts a fresh process and carries on."""

    def __init__(self, pool: LocalExecutor, index: int) -> None:
        self.pool = pool
        self.index = index
        self.current: Future[Any] | None = None
        self.killed = False
        self.lock = threading.Lock()
        self._start()
        self.thread = threading.Thread(
            target=self._loop, name=f"loopline-worker-{index}", daemon=True
        )
        self.thread.start()

    def _start(self) -> None:
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loopline.pipelines.worker", str(child.fileno())],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            start_new_session=False,
        )
        child.close()
        self.conn = Connection(parent.detach())

    def _loop(self) -> None:
        while True:
            item = self.pool.queue.get()
            if item is None:
                self.conn.close()
                return
            message, future = item
            if not future.set_running_or_notify_cancel():
                continue
            with self.lock:
                self.current, self.killed = future, False
            try:
                self.conn.send_bytes(message)
                answer = self.conn.recv_bytes()
            except (EOFError, OSError):
                self._restart(future)
                continue
            finally:
                with self.lock:
                    self.current = None
            settle(future, answer)

    def _restart(self, future: Future[Any]) -> None:
        code = self.proc.wait()
        if not self.killed and not future.done():
            future.set_exception(
                WorkerDied(f"the worker process running the step exited with code {code}")
            )
        elif not future.done():
            future.cancel()
        self.conn.close()
        if not self.pool.closed:
            self._start()

    def kill(self, future: Future[Any]) -> bool:
        with self.lock:
            if self.current is not future:
                return False
            self.killed = True
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            return True


class LocalExecutor:
    """``workers`` persistent worker processes (default: the CPU count) fed from one queue.
    Processes start once and are reused by every task and every run that shares the pool, so
    a trivial step costs a pipe round trip, not an interpreter start."""

    def __init__(self, workers: int | None = None, **_options: Any) -> None:
        count = workers or os.cpu_count() or 1
        if count < 1:
            raise ConfigError(f"workers must be at least 1, got {count}")
        self.capacity = float(count)
        self.closed = False
        self.queue: queue.SimpleQueue[tuple[bytes, Future[Any]] | None] = queue.SimpleQueue()
        self._workers = [_Worker(self, i) for i in range(count)]

    def submit(self, task: StepTask) -> Future[Any]:
        import cloudpickle

        if self.closed:
            raise LooplineError("the executor is shut down")
        payload = cloudpickle.dumps((task.fn, task.args, task.kwargs))
        message = pickle.dumps(({**_context(), "modules": task.modules}, payload))
        future: Future[Any] = Future()
        self.queue.put((message, future))
        return future

    def cancel(self, future: Future[Any]) -> None:
        if future.cancel():
            return  # still queued
        for worker in self._workers:
            if worker.kill(future):
                return

    def shutdown(self) -> None:
        if self.closed:
            return
        self.closed = True
        for _ in self._workers:
            self.queue.put(None)
        for worker in self._workers:
            worker.thread.join(timeout=5)
            try:
                worker.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()

    @property
    def alive(self) -> bool:
        return not self.closed and all(w.proc.poll() is None for w in self._workers)


_shared: dict[int | None, LocalExecutor] = {}
_shared_lock = threading.Lock()


def shared_local_executor(workers: int | None = None) -> LocalExecutor:
    """One :class:`LocalExecutor` per worker count per process, started on first use and shut
    down at exit: notebooks, tests and schedulers running many pipelines pay start-up once."""
    with _shared_lock:
        pool = _shared.get(workers)
        if pool is None or pool.closed:
            if not _shared:
                atexit.register(_shutdown_shared)
            pool = _shared[workers] = LocalExecutor(workers)
        return pool


def _shutdown_shared() -> None:
    for pool in list(_shared.values()):
        pool.shutdown()
    _shared.clear()
