"""``loopline audit list``: who changed what through the server, from where, with what result.

Every mutating ``/api/`` request is an ``audit`` event in the one event log (the server's
middleware writes it); this command reads them on the workspace's database. Over HTTP the same
list is ``GET /api/v1/audit``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.table import Table

from loopline.cli.context import console, workspace
from loopline.entities import Event
from loopline.errors import InvalidInput

__all__ = ["app", "audit_row"]

app = typer.Typer(help="Read the audit log of a shared server.", no_args_is_help=True)


def _iso(ms: int) -> str:
    return (
        dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def audit_row(event: Event) -> dict[str, object]:
    """One event as the audit log shows it: request events by method and path, any other
    event by its action."""
    # Only audit events carry request details; other events' details mean other things (a
    # run's "status" is FINISHED, not an HTTP status).
    details = event.details if event.action == "audit" else {}
    method, path = details.get("method"), details.get("path")
    return {
        "id": event.id,
        "time": _iso(event.time_ms),
        "actor": event.actor,
        "action": event.action,
        "request": f"{method} {path}" if method and path else event.action,
        "object_kind": event.object_kind,
        "object_id": event.object_id,
        "status": details.get("status"),
        "client": details.get("client", ""),
    }


@app.command("list")
def list_(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="Only requests by this user.")] = None,
    object_kind: Annotated[
        str | None, typer.Option(help="Only requests on objects of this kind, e.g. run.")
    ] = None,
    object_id: Annotated[
        str | None, typer.Option(help="Only requests on this object (with --object-kind).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, newest first.")] = 50,
    all_actions: Annotated[
        bool,
        typer.Option(
            "--all-actions",
            help="Every event, not only API requests: also changes made in-process, such as "
            "'loopline users create'.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show audited requests, newest first: time (UTC), actor, request, object, status and the
    client address."""
    if object_id is not None and object_kind is None:
        raise InvalidInput("--object-id needs --object-kind (e.g. --object-kind run)")
    events = workspace(ctx).events.list(
        action=None if all_actions else "audit",
        actor=actor,
        object_kind=object_kind,
        object_id=object_id,
        limit=limit,
        newest_first=True,
    )
    rows = [audit_row(e) for e in events]
    if as_json:
        for row in rows:
            console.print(json.dumps(row, sort_keys=True), soft_wrap=True)
        return
    table = Table("time (UTC)", "actor", "request", "object", "status", "client")
    for row in rows:
        table.add_row(
            str(row["time"]),
            str(row["actor"]),
            str(row["request"]),
            f"{row['object_kind']}:{row['object_id']}",
            "" if row["status"] is None else str(row["status"]),
            str(row["client"]),
        )
    console.print(table)
