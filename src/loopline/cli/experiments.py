from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from loopline.cli.context import console, workspace
from loopline.tracking.entities import ViewType

app = typer.Typer(help="Create, list, rename and delete experiments.", no_args_is_help=True)


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


@app.command("list")
def list_(
    ctx: typer.Context,
    view: Annotated[
        ViewType, typer.Option(help="Which lifecycle stages to show.")
    ] = ViewType.ACTIVE_ONLY,
) -> None:
    """List experiments."""
    tracking = workspace(ctx).tracking
    table = Table("id", "name", "stage", "created (UTC)", "artifact location")
    for e in tracking.list_experiments(view):
        table.add_row(
            e.experiment_id, e.name, e.lifecycle_stage, _when(e.creation_time), e.artifact_location
        )
    console.print(table)


@app.command("create")
def create(ctx: typer.Context, name: Annotated[str, typer.Argument(help="A unique name.")]) -> None:
    """Create an experiment and print its id."""
    console.print(workspace(ctx).tracking.create_experiment(name))


@app.command("rename")
def rename(
    ctx: typer.Context,
    experiment_id: Annotated[str, typer.Argument(help="Experiment id.")],
    new_name: Annotated[str, typer.Argument(help="The new, unique name.")],
) -> None:
    """Rename an experiment."""
    workspace(ctx).tracking.rename_experiment(experiment_id, new_name)
    console.print(f"experiment {experiment_id} renamed to {new_name!r}")


@app.command("delete")
def delete(ctx: typer.Context, experiment_id: Annotated[str, typer.Argument()]) -> None:
    """Soft-delete an experiment (restorable; its runs stay until purged)."""
    workspace(ctx).tracking.delete_experiment(experiment_id)
    console.print(
        f"experiment {experiment_id} deleted; 'loopline experiments restore "
        f"{experiment_id}' brings it back"
    )


@app.command("restore")
def restore(ctx: typer.Context, experiment_id: Annotated[str, typer.Argument()]) -> None:
    """Restore a deleted experiment."""
    workspace(ctx).tracking.restore_experiment(experiment_id)
    console.print(f"experiment {experiment_id} restored")
