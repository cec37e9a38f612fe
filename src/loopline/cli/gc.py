from __future__ import annotations

from typing import Annotated

import typer

from loopline.cli.context import console, workspace
from loopline.cli.progress import count_progress


def gc(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, delete nothing.")] = False,
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than", help="Only purge runs deleted at least this many seconds ago."
        ),
    ] = 0,
    keep_runs: Annotated[
        bool, typer.Option("--keep-deleted-runs", help="Do not purge soft-deleted runs.")
    ] = False,
    grace: Annotated[
        int | None,
        typer.Option(
            help="Spare blobs younger than this many seconds (default: gc_grace_seconds, 3600)."
        ),
    ] = None,
) -> None:
    """Purge soft-deleted runs, then delete blobs that no metadata references.

    Blobs written within the grace period (an hour by default) are always kept: a writer may
    have stored one and not yet committed the row that points at it.
    """
    ws = workspace(ctx)
    with count_progress("scanning blobs") as progress:
        report = ws.gc(
            dry_run=dry_run,
            grace_seconds=grace,
            purge_runs_older_than=None if keep_runs else older_than,
            on_progress=progress,
        )
    verb = "would delete" if dry_run else "deleted"
    if report.purged_runs:
        console.print(
            f"{'would purge' if dry_run else 'purged'} {len(report.purged_runs)} deleted runs"
        )
    console.print(
        f"{verb} {report.deleted} blobs ({report.deleted_bytes:,} bytes); kept {report.live} "
        f"referenced and {report.young} younger than the grace period"
    )
    if report.staging_cleaned:
        console.print(f"removed {report.staging_cleaned} abandoned partial uploads")
    if report.missing:
        console.print(
            f"warning: {len(report.missing)} referenced blobs are missing, "
            f"e.g. {report.missing[0]}",
            style="yellow",
        )
