"""Non-blocking logging: calls enqueue, one background thread writes batches.

Each ``log_metric`` costs the caller a validation and a queue append. The writer thread drains
the queue every ``interval`` seconds (or as soon as ``max_batch`` items wait), groups items by
run and writes each group in one transaction. ``flush()`` returns once everything queued before
it is stored, and re-raises a write error there, on the caller's thread, so failures are never
silent. The queue is bounded: a producer far faster than the database blocks briefly instead of
growing memory without limit, which also bounds how much a SIGKILL can lose.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loopline.errors import LooplineError, StoreUnavailable
from loopline.tracking.entities import Metric

__all__ = ["BatchWriter"]

WriteBatch = Callable[
    [str, Sequence[Metric], Sequence[tuple[str, str]], Sequence[tuple[str, str]]], None
]


@dataclass
class _Pending:
    metrics: list[Metric] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)

    def size(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)


class BatchWriter:
    def __init__(
        self,
        write: WriteBatch,
        *,
        interval: float = 0.1,
        max_batch: int = 5_000,
        max_pending: int = 10_000,
        retries: int = 5,
    ) -> None:
        self._write = write
        self._interval = interval
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._retries = retries
        self._lock = threading.Condition()
        self._pending: dict[str, _Pending] = defaultdict(_Pending)
        self._count = 0
        self._submitted = 0  # items ever queued
        self._written = 0  # items ever handled (stored or failed)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="loopline-writer", daemon=True)
        self._thread.start()

    # -- producer side ---------------------------------------------------------------------
    def submit(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[tuple[str, str]] = (),
        tags: Sequence[tuple[str, str]] = (),
    ) -> None:
        n = len(metrics) + len(params) + len(tags)
        if n == 0:
            return
        with self._lock:
            if self._closed:
                raise LooplineError("the tracking writer is closed")
            while self._count >= self._max_pending and self._error is None:
                self._lock.notify_all()
                self._lock.wait(0.05)
            self._raise_error()
            pending = self._pending[run_id]
            pending.metrics.extend(metrics)
            pending.params.extend(params)
            pending.tags.extend(tags)
            self._count += n
            self._submitted += n
            if self._count >= self._max_batch:
                self._lock.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything submitted so far is stored; raise the writer's error if a
        write failed for good."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._submitted
            self._lock.notify_all()
            while self._written < target and self._error is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise StoreUnavailable(
                        f"timed out after {timeout} s waiting for logged values to be written"
                    )
                self._lock.wait(0.05 if remaining is None else min(0.05, remaining))
            self._raise_error()

    def close(self, timeout: float | None = None) -> None:
        try:
            self.flush(timeout)
        finally:
            with self._lock:
                self._closed = True
                self._lock.notify_all()
            self._thread.join(timeout=5)

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    @property
    def pending(self) -> int:
        with self._lock:
            return self._count

    # -- writer thread ---------------------------------------------------------------------
    def _take(self) -> dict[str, _Pending]:
        batch, self._pending = self._pending, defaultdict(_Pending)
        self._count = 0
        return batch

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._count < self._max_batch and not self._closed:
                    self._lock.wait(self._interval)
                if self._closed and self._count == 0:
                    return
                batch = self._take()
                self._lock.notify_all()
            done = 0
            for run_id, pending in batch.items():
                try:
                    self._write_with_retry(run_id, pending)
                except BaseException as exc:  # surfaced to the next flush/submit caller
                    with self._lock:
                        self._error = exc
                done += pending.size()
            with self._lock:
                self._written += done
                self._lock.notify_all()

    def _write_with_retry(self, run_id: str, pending: _Pending) -> None:
        delay = 0.1
        for attempt in range(self._retries + 1):
            try:
                # Large backlogs are split so one transaction never grows unbounded.
                for start in range(0, max(len(pending.metrics), 1), self._max_batch * 4):
                    chunk = pending.metrics[start : start + self._max_batch * 4]
                    first = start == 0
                    self._write(
                        run_id,
                        chunk,
                        pending.params if first else (),
                        pending.tags if first else (),
                    )
                return
            except StoreUnavailable:
                if attempt == self._retries:
                    raise
            except LooplineError:
                raise
            except Exception as exc:  # database hiccups: connection resets, lock timeouts
                if attempt == self._retries:
                    raise StoreUnavailable(f"could not write logged values: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
