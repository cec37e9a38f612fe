from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from loopline.cli.context import console, when, workspace
from loopline.tracking.entities import Run, ViewType

app = typer.Typer(help="List, inspect, compare, delete and restore runs.", no_args_is_help=True)


def _duration(run: Run) -> str:
    if run.info.end_time is None:
        return ""
    return f"{(run.info.end_time - run.info.start_time) / 1000:.1f}s"


def _fmt(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


@app.command("list")
def list_(
    ctx: typer.Context,
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            help="Experiment name or id (repeatable; default: all active experiments).",
        ),
    ] = None,
    filter_string: Annotated[
        str,
        typer.Option(
            "--filter",
            "-f",
            help="MLflow filter, e.g. \"metrics.acc > 0.9 and params.lr = '0.01'\".",
        ),
    ] = "",
    order_by: Annotated[
        list[str] | None, typer.Option("--order-by", help="e.g. 'metrics.acc DESC' (repeatable).")
    ] = None,
    max_results: Annotated[int, typer.Option("--max", help="Show at most this many.")] = 50,
    view: Annotated[
        ViewType, typer.Option(help="Lifecycle stages to include.")
    ] = ViewType.ACTIVE_ONLY,
) -> None:
    """List runs, newest first, with their metrics."""
    tracking = workspace(ctx).tracking
    ids: list[str] = []
    for ref in experiment or []:
        ids.append(ref if ref.isdigit() else tracking.get_experiment_by_name(ref).experiment_id)
    if not ids:
        ids = [e.experiment_id for e in tracking.list_experiments(ViewType.ALL)]
    runs, _ = tracking.search_runs(ids, filter_string, order_by, max_results, view)
    metric_keys = sorted({k for r in runs for k in r.metrics})[:6]
    table = Table(
        "run id", "name", "experiment", "status", "started (UTC)", "duration", *metric_keys
    )
    for run in runs:
        table.add_row(
            run.run_id,
            run.info.run_name,
            run.info.experiment_id,
            run.info.status,
            when(run.info.start_time),
            _duration(run),
            *(_fmt(run.metrics.get(k)) for k in metric_keys),
        )
    console.print(table)
    console.print(f"{len(runs)} runs")


@app.command("show")
def show(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="Run id.")]) -> None:
    """Everything about a run: status, params, metrics, tags (incl. captured environment),
    artifacts."""
    tracking = workspace(ctx).tracking
    run = tracking.get_run(run_id)
    info = run.info
    console.print(Text.assemble((info.run_name, "bold"), f"  {info.run_id}"))
    console.print(
        f"experiment {info.experiment_id}   status {info.status}   stage {info.lifecycle_stage}"
    )
    console.print(
        f"started {when(info.start_time)}   ended {when(info.end_time) or '-'}   "
        f"duration {_duration(run) or '-'}"
    )
    if info.parent_run_id:
        console.print(f"parent run {info.parent_run_id}")
    for title, values in (("params", run.params), ("metrics", run.metrics), ("tags", run.tags)):
        if not values:
            continue
        table = Table("key", "value", title=title, title_justify="left")
        for key in sorted(values):
            table.add_row(key, _fmt(values[key]))
        console.print(table)
    files = tracking.artifact_files(run_id)
    if files:
        table = Table("path", "size", title="artifacts", title_justify="left")
        for row in files:
            table.add_row(row.path, f"{row.size:,}")
        console.print(table)


@app.command("compare")
def compare(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    all_rows: Annotated[bool, typer.Option("--all", help="Also show rows that are equal.")] = True,
) -> None:
    """Params and final metrics side by side; values that differ are highlighted."""
    tracking = workspace(ctx).tracking
    runs = [tracking.get_run(r) for r in run_ids]
    table = Table("", *(f"{r.info.run_name}\n{r.run_id[:8]}" for r in runs))
    for section, pick in (("param", lambda r: r.params), ("metric", lambda r: r.metrics)):
        keys = sorted({k for r in runs for k in pick(r)})
        for key in keys:
            values = [pick(r).get(key) for r in runs]
            differs = len({repr(v) for v in values}) > 1
            if not differs and not all_rows:
                continue
            style = "bold yellow" if differs else ""
            table.add_row(f"{section}s.{key}", *(_fmt(v) for v in values), style=style)
    console.print(table)


@app.command("delete")
def delete(ctx: typer.Context, run_ids: Annotated[list[str], typer.Argument()]) -> None:
    """Soft-delete runs (restorable until 'loopline gc' purges them)."""
    tracking = workspace(ctx).tracking
    for run_id in run_ids:
        tracking.delete_run(run_id)
    console.print(f"deleted {len(run_ids)} run(s); 'loopline runs restore' brings them back")


@app.command("restore")
def restore(ctx: typer.Context, run_ids: Annotated[list[str], typer.Argument()]) -> None:
    """Restore soft-deleted runs."""
    tracking = workspace(ctx).tracking
    for run_id in run_ids:
        tracking.restore_run(run_id)
    console.print(f"restored {len(run_ids)} run(s)")
