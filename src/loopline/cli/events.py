from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Annotated

import typer
from rich.table import Table

from loopline.cli.context import console, workspace
from loopline.entities import Ref

app = typer.Typer(help="Read the append-only event log.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    obj: Annotated[str | None, typer.Option("--object", help="Only events about KIND:ID.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. workspace.init.")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only events by this actor.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show recent events: who did what to which object, and when."""
    ref = Ref.parse(obj) if obj else None
    ws = workspace(ctx)
    events = ws.events.list(
        object_kind=ref.kind if ref else None,
        object_id=ref.id if ref else None,
        action=action,
        actor=actor,
        limit=limit,
        newest_first=True,
    )
    table = Table("id", "time (UTC)", "actor", "action", "object", "details")
    for e in events:
        if as_json:
            console.print(json.dumps(dataclasses.asdict(e), sort_keys=True), soft_wrap=True)
            continue
        when = dt.datetime.fromtimestamp(e.time_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            str(e.id), when, e.actor, e.action, str(e.object), json.dumps(e.details, sort_keys=True)
        )
    if not as_json:
        console.print(table)
