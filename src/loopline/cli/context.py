"""What every command shares: the global flags and the one way to get a workspace from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import typer
from rich.console import Console

from loopline.config import ResolvedSettings, load_settings
from loopline.workspace import Workspace

__all__ = ["CliState", "console", "err_console", "resolved", "workspace"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


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
    return load_settings(state(ctx).flags)


def workspace(ctx: typer.Context) -> Workspace:
    return Workspace(resolved(ctx).settings)
