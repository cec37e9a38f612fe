from __future__ import annotations

import os
from typing import Annotated

import typer

from loopline.cli.context import console, state


def init(
    ctx: typer.Context,
    directory: Annotated[
        str | None,
        typer.Argument(
            help="Where to create the workspace (default: --home, LOOPLINE_HOME, "
            "else the current directory).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create a workspace: loopline.toml plus .loopline/ (SQLite database and blob directory).

    Running it again is safe: an existing loopline.toml is kept and the database is migrated.
    Use the global --store/--artifacts flags to point a new workspace at PostgreSQL or S3.
    """
    flags = state(ctx).flags
    target = directory or flags.get("home") or os.environ.get("LOOPLINE_HOME") or "."
    from loopline.workspace import init_workspace

    with init_workspace(
        target, store_uri=flags.get("store_uri"), artifact_uri=flags.get("artifact_uri")
    ) as ws:
        s = ws.settings.display()
        console.print(f"Workspace {ws.id} ready in {ws.settings.home}")
        console.print(f"  metadata  {s['store_uri']}")
        console.print(f"  blobs     {s['artifact_uri']}")
