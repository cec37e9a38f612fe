from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from loopline.cli.context import console, workspace
from loopline.cli.progress import byte_progress

app = typer.Typer(help="List and download run artifacts.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    path: Annotated[
        str | None, typer.Argument(help="A directory inside the run's artifacts.")
    ] = None,
) -> None:
    """List a run's artifacts (one directory level)."""
    table = Table("path", "size")
    for item in workspace(ctx).tracking.list_artifacts(run_id, path):
        table.add_row(
            item.path + ("/" if item.is_dir else ""), "" if item.is_dir else f"{item.size:,}"
        )
    console.print(table)


@app.command("download")
def download(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    path: Annotated[
        str | None, typer.Option("--path", help="File or directory to fetch (default: everything).")
    ] = None,
    dest: Annotated[Path, typer.Option("--dest", "-d", help="Where to write.")] = Path("."),
) -> None:
    """Download artifacts, verifying every byte against its digest."""
    tracking = workspace(ctx).tracking
    total = sum(r.size for r in tracking.artifact_files(run_id, path))
    with byte_progress(f"downloading {run_id[:8]}", total):
        local = tracking.download_artifacts(run_id, path, dest)
    console.print(f"wrote {local}")
