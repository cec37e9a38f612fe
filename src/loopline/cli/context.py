"""What every command shares: the global flags and the one way to get a workspace from them."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:  # imported when a command runs, not to print --help
    from loopline.config import ResolvedSettings
    from loopline.workspace import Workspace

__all__ = ["CliState", "console", "err_console", "print_json", "resolved", "when", "workspace"]


def _console(stderr: bool) -> Console:
    # markup/emoji off: run names, ids and paths are user data and must print verbatim
    # ("run:x" must not become an emoji, "[bold]" must not vanish). Styling goes through
    # Text/style arguments instead. Piped output is not cut to 80 columns.
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 1000
    return Console(stderr=stderr, highlight=False, markup=False, emoji=False, width=width)


console = _console(stderr=False)
err_console = _console(stderr=True)


@dataclass
class CliState:
    flags: dict[str, Any] = field(default_factory=dict)
    verbose: bool = False


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def resolved(ctx: typer.Context) -> ResolvedSettings:
    from loopline.config import load_settings

    return load_settings(state(ctx).flags)


def workspace(ctx: typer.Context) -> Workspace:
    from loopline.workspace import Workspace

    return Workspace(resolved(ctx).settings)


def when(ms: int | None) -> str:
    """A millisecond timestamp as the CLI's tables show it (UTC, to the second)."""
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_json(value: Any) -> None:
    """One JSON object on one line (``--json`` output), keys sorted."""
    console.print(json.dumps(value, sort_keys=True, default=str), soft_wrap=True)
