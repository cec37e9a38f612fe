"""Rich progress bars for long CLI work; quiet when output is not a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from loopline.cli.context import err_console

# rich.progress is imported where a bar is built: it costs ~20 ms, which `loopline --help` (it
# imports every command module) should not pay.


@contextmanager
def byte_progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield a callback taking byte counts; draws a transfer bar on stderr."""
    with sized_progress(description) as (advance, set_total):
        if total is not None:
            set_total(total)
        yield advance


@contextmanager
def count_progress(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """Yield a callback taking the running item count."""
    from rich.progress import BarColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} items"),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.update(task, completed=n)


@contextmanager
def sized_progress(
    description: str,
) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """Yield ``(advance, set_total)`` for a byte bar whose total is known only once the work
    has looked at its input (a directory walk, say)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    with bar:
        task = bar.add_task(description, total=None)
        yield (lambda n: bar.advance(task, n)), (lambda total: bar.update(task, total=total))
