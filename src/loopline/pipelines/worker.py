"""The worker process of the local executor: ``python -m loopline.pipelines.worker FD``.

It reads tasks from a socket, runs them and writes back the result or the exception, for as
long as the socket stays open. Kept to the standard library and cloudpickle so a worker starts
in tens of milliseconds; a step's own imports happen on its first task and then stay warm.

A fresh interpreter, not ``multiprocessing``'s spawn: spawn re-imports the parent's
``__main__`` in every worker, which re-runs an unguarded script; steps defined in ``__main__``
(or a notebook) reach the worker by value through cloudpickle instead.

Message in: ``pickle((context, payload))``; ``context`` holds the parent's ``sys.path``, cwd,
``LOOPLINE_*`` environment and the modification times of the project modules the step's code
hash read; ``payload`` is ``cloudpickle((fn, args, kwargs))``. A module whose file changed
since this worker imported it is reloaded first, so a long-lived worker never runs stale code.
Message out: ``cloudpickle(("ok", value))`` or ``cloudpickle(("error", exception, text))``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["main"]

_seen: dict[str, int] = {}


def _apply_context(context: dict[str, Any]) -> None:
    for entry in reversed(context["sys_path"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if context["cwd"] != os.getcwd():
        os.chdir(context["cwd"])
    env = context["env"]
    before = {n: v for n, v in os.environ.items() if n.startswith("LOOPLINE_")}
    for name in [n for n in os.environ if n.startswith("LOOPLINE_") and n not in env]:
        del os.environ[name]
    os.environ.update(env)
    if before != env and "loopline.api" in sys.modules:
        # This worker last served another workspace (a pool outlives one run): forget the
        # workspace a step opened then, so ll.current_workspace() resolves the new settings.
        from loopline.api import use_workspace

        use_workspace(None)
    for name, mtime in context["modules"].items():
        module = sys.modules.get(name)
        known = _seen.get(name)
        _seen[name] = mtime
        if module is None or known is None or known == mtime:
            continue
        file = getattr(module, "__file__", None)
        if file:  # the cached bytecode may carry the same second-resolution mtime: drop it
            try:
                os.unlink(importlib.util.cache_from_source(file))
            except (OSError, ValueError, NotImplementedError):
                pass
        importlib.reload(module)


def _run(message: bytes) -> bytes:

    try:
        context, payload = pickle.loads(message)
        _apply_context(context)
    except BaseException as exc:
        return _error(exc)
    return call(payload)


def call(payload: bytes) -> bytes:
    """Run the pickled ``(fn, args, kwargs)`` and pickle the outcome: ``("ok", value)`` or
    ``("error", exception, traceback text)``. Failures travel as values, so the runner sees the
    step's own exception and decides about retries itself, on every executor alike."""
    import cloudpickle

    try:
        fn, args, kwargs = cloudpickle.loads(payload)
        value = fn(*args, **kwargs)
    except BaseException as exc:
        return _error(exc)
    try:
        return bytes(cloudpickle.dumps(("ok", value)))
    except Exception as exc:
        return _error(TypeError(f"the step's return value cannot be pickled: {exc}"))


def _error(exc: BaseException) -> bytes:
    import cloudpickle

    text = "".join(traceback.format_exception(exc))
    try:
        return bytes(cloudpickle.dumps(("error", exc, text)))
    except Exception:  # an exception that does not pickle: keep its type name and message
        return bytes(
            cloudpickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}"), text))
        )


def main(fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    conn = Connection(fd)
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        conn.send_bytes(_run(message))


if __name__ == "__main__":
    main(int(sys.argv[1]))
