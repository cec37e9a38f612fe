"""Non-blocking logging: calls enqueue, one background thread writes batches.

Each ``log_metric`` costs the caller a validation and a queue append. The writer thread drains
the queue every ``interval`` seconds (or as soon as ``max_batch`` items wait), groups items by
run and writes each group in one transaction. Runs themselves can be queued too (a study's
trials): a run created, logged to and ended within one batch is written whole, and all such
runs of a batch share one transaction, so a trial costs its caller no database round trip.
``flush()`` returns once everything queued before
it is stored, and re-raises a write error there, on the caller's thread, so failures are never
silent. The queue is bounded: a producer far faster than the database blocks briefly instead of
growing memory without limit, which also bounds how much a SIGKILL can lose.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from loopline.errors import LooplineError, StoreUnavailable
from loopline.tracking.entities import Metric, RunRecord

__all__ = ["BatchWriter", "RunSink"]

WriteBatch = Callable[
    [str, Sequence[Metric], Sequence[tuple[str, str]], Sequence[tuple[str, str]]], None
]


class RunSink(Protocol):
    """Where queued runs go (the tracking service)."""

    def write_runs(self, records: Sequence[RunRecord]) -> None: ...

    def end_record(self, record: RunRecord, status: str, end_time: int | None = None) -> None: ...

    def update_run(
        self, run_id: str, status: str | None = None, end_time: int | None = None
    ) -> Any: ...


@dataclass
class _Pending:
    metrics: list[Metric] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    record: RunRecord | None = None
    """The run itself, when it was queued and is not written yet."""
    end: tuple[str, int] | None = None
    """``(status, end_time)`` when the run's end was queued."""

    def size(self) -> int:
        extra = (self.record is not None) + (self.end is not None)
        return len(self.metrics) + len(self.params) + len(self.tags) + extra

    def has_values(self) -> bool:
        return bool(self.metrics or self.params or self.tags)


class BatchWriter:
    def __init__(
        self,
        write: WriteBatch,
        *,
        runs: RunSink | None = None,
        interval: float = 0.1,
        max_batch: int = 5_000,
        max_pending: int = 10_000,
        retries: int = 5,
    ) -> None:
        self._write = write
        self._runs = runs
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
        with self._queue(run_id, n) as pending:
            pending.metrics.extend(metrics)
            pending.params.extend(params)
            pending.tags.extend(tags)

    @property
    def takes_runs(self) -> bool:
        """Whether runs can be queued here (``submit_run``): only with a local service."""
        return self._runs is not None

    def submit_run(self, record: RunRecord) -> None:
        """Queue a new run (``TrackingService.plan_run``); values logged to it and its end may
        follow at once, before it is written."""
        if self._runs is None:
            raise LooplineError("this writer was made without a place to write runs")
        with self._queue(record.info.run_id, 1) as pending:
            pending.record = record

    def submit_end(self, run_id: str, status: str, end_time: int) -> None:
        """Queue the end of a run, written after everything queued for it before."""
        if self._runs is None:
            raise LooplineError("this writer was made without a place to write runs")
        with self._queue(run_id, 1) as pending:
            pending.end = (status, end_time)

    @contextmanager
    def _queue(self, run_id: str, n: int) -> Iterator[_Pending]:
        with self._lock:
            if self._closed:
                raise LooplineError("the tracking writer is closed")
            while self._count >= self._max_pending and self._error is None:
                self._lock.notify_all()
                self._lock.wait(0.05)
            self._raise_error()
            yield self._pending[run_id]
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
            self._write_batch(batch)
            done = sum(pending.size() for pending in batch.values())
            with self._lock:
                self._written += done
                self._lock.notify_all()

    def _fail(self, exc: BaseException) -> None:
        """Keep a write error for the next flush/submit caller."""
        with self._lock:
            self._error = exc

    def _write_batch(self, batch: dict[str, _Pending]) -> None:
        """Queued runs first (with what was logged to them, ended if their end came too), in
        one transaction; then values for runs already stored; then the ends of those."""
        sink = self._runs
        records = []
        for pending in batch.values():
            if pending.record is None:
                continue
            assert sink is not None  # submit_run/submit_end refuse without one
            record = pending.record
            record.params.update(pending.params)
            record.tags.update(pending.tags)
            record.metrics.extend(pending.metrics)
            if pending.end is not None:
                sink.end_record(record, *pending.end)
            records.append(record)
        if records:
            assert sink is not None
            try:
                self._retrying(sink.write_runs, records)
            except LooplineError:  # one bad run (say, a deleted experiment): save the others
                for record in records:
                    try:
                        self._retrying(sink.write_runs, [record])
                    except BaseException as exc:
                        self._fail(exc)
            except BaseException as exc:
                self._fail(exc)
        for run_id, pending in batch.items():
            if pending.record is not None:
                continue
            try:
                if pending.has_values():
                    self._write_with_retry(run_id, pending)
                if pending.end is not None:
                    assert sink is not None
                    self._retrying(sink.update_run, run_id, *pending.end)
            except BaseException as exc:
                self._fail(exc)

    def _write_with_retry(self, run_id: str, pending: _Pending) -> None:
        # Large backlogs are split so one transaction never grows unbounded.
        for start in range(0, max(len(pending.metrics), 1), self._max_batch * 4):
            chunk = pending.metrics[start : start + self._max_batch * 4]
            first = start == 0
            self._retrying(
                self._write,
                run_id,
                chunk,
                pending.params if first else (),
                pending.tags if first else (),
            )

    def _retrying(self, write: Callable[..., object], *args: Any) -> None:
        delay = 0.1
        for attempt in range(self._retries + 1):
            try:
                write(*args)
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
