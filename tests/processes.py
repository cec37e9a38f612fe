"""Child Python processes for the crash, concurrency and memory tests.

A child runs one function of an importable test module in a fresh interpreter, with its arguments
passed as JSON and its output sent to a log file (a pipe nobody drains could block it). Every wait
is bounded, and :class:`Children` kills and reaps whatever still runs when the test ends, so a
hang becomes a failure, never a stuck run or a stray process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Child", "Children", "released_by", "wait_until"]

REPO_ROOT = Path(__file__).resolve().parent.parent
REAP_TIMEOUT = 30.0


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no handler, no cleanup, no flush; exactly what a crash or OOM kill does."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=REAP_TIMEOUT)

    def finish(self, timeout: float) -> int:
        """Wait for a clean exit; fail with the child's output if it hangs or exits non-zero."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} did not finish within {timeout} s:\n{self.output()}")
        if code != 0:
            pytest.fail(f"{self.name} exited with {code}:\n{self.output()}")
        return code


class Children:
    """Starts children and, on leaving the ``with`` block, kills and reaps every one still alive."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Child] = []

    def start(self, target: str, *args: Any, env: Mapping[str, str] | None = None) -> Child:
        """Run ``module:function(*args)`` in a new interpreter."""
        module, _, function = target.partition(":")
        code = (
            f"import json, sys\nfrom {module} import {function}\n"
            f"{function}(*json.loads(sys.argv[1]))"
        )
        name = f"{function}#{len(self.started)}"
        log = self.log_dir / f"{name.replace('#', '-')}.log"
        child_env = {**os.environ, **(env or {})}
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p
        )
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", code, json.dumps(args)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env,
            )
        child = Child(name, proc, log)
        self.started.append(child)
        return child

    def __enter__(self) -> Children:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for child in self.started:
            if child.proc.poll() is None:
                child.kill()


def wait_until(
    condition: Callable[[], Any],
    *,
    what: str,
    timeout: float,
    watch: tuple[Child, ...] | list[Child] = (),
) -> Any:
    """Poll ``condition`` until it returns something truthy and return that. Fails, naming
    ``what``, after ``timeout`` seconds, or at once with its output if a watched child exits."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        for child in watch:
            if child.proc.poll() is not None:
                pytest.fail(
                    f"{child.name} exited with {child.proc.returncode} before {what}:\n"
                    f"{child.output()}"
                )
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def released_by(ready: str, go: str, timeout: float = 120.0) -> None:
    """In a child: announce readiness by creating ``ready``, then spin until ``go`` exists, so
    that many children start their work within a millisecond of each other."""
    Path(ready).touch()
    deadline = time.monotonic() + timeout
    go_path = Path(go)
    while not go_path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"never released: {go} did not appear within {timeout} s")
        time.sleep(0.0005)
