"""``loopline pipeline``: run, inspect, draw and resume pipelines. Each command is one call on
:mod:`loopline.pipelines`; pipeline modules (and pandas) load only when a command runs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from loopline.cli.context import console, err_console, state, when, workspace
from loopline.errors import InvalidInput

if TYPE_CHECKING:
    from loopline.pipelines.results import PipelineRun, StepRun

app = typer.Typer(help="Run, inspect, draw and resume pipelines.", no_args_is_help=True)

_STYLE = {
    "finished": "green",
    "cached": "cyan",
    "failed": "bold red",
    "skipped": "yellow",
    "started": "",
    "retrying": "yellow",
}
FAILED_EXIT = 1
"""Exit status of 'pipeline run' and 'pipeline resume' when the pipeline FAILED."""


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"


def _params(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param {pair!r} must look like key=value")
        out[key.strip()] = value
    return out


def _export_settings(ctx: typer.Context) -> None:
    """Worker processes open the workspace from the environment: hand them the global flags."""
    names = {
        "home": "LOOPLINE_HOME",
        "store_uri": "LOOPLINE_STORE_URI",
        "artifact_uri": "LOOPLINE_ARTIFACT_URI",
    }
    for flag, value in state(ctx).flags.items():
        if value and flag in names:
            os.environ[names[flag]] = str(value)


def _progress(kind: str, step: StepRun) -> None:
    """One line per step event, printed as it happens."""
    detail = ""
    if kind in ("finished", "failed") and step.duration_s is not None:
        detail = f" {step.duration_s:.2f}s"
    if kind == "retrying":
        detail = f" attempt {step.attempts}: after {step.error}"
    elif kind == "failed":
        detail += f" after {step.attempts} attempt(s): {step.error}"
    elif kind == "cached":
        detail = f" from run {step.cached_from}"
    elif kind == "skipped":
        detail = f" ({step.error})"
    console.print(
        Text.assemble((f"  {kind:<9}", _STYLE.get(kind, "")), step.name, detail), soft_wrap=True
    )


def _summary(result: PipelineRun, seconds: float) -> None:
    counts: dict[str, int] = {}
    for s in result.steps.values():
        counts[s.state] = counts.get(s.state, 0) + 1
    parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    style = "green" if result.status == "FINISHED" else "bold red"
    console.print(
        Text.assemble(
            f"pipeline {result.name} run {result.run_id} ",
            (result.status, style),
            f": {len(result.steps)} steps ({parts}) in {seconds:.1f}s",
        ),
        soft_wrap=True,
    )
    if result.status != "FINISHED":
        err_console.print(
            Text.assemble(("Error:", "bold red"), f" step {result.failed_step!r}: {result.error}"),
            soft_wrap=True,
        )


def _execute(ctx: typer.Context, call: Any) -> None:
    from loopline.api import use_workspace

    _export_settings(ctx)
    use_workspace(workspace(ctx))
    started = time.monotonic()
    result = call(_progress)
    _summary(result, time.monotonic() - started)
    if result.status != "FINISHED":
        raise typer.Exit(FAILED_EXIT)


def _executor_options(ray_address: str | None) -> dict[str, Any] | None:
    return {"address": ray_address} if ray_address else None


@app.command("run")
def run(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The pipeline, as module:function.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="A pipeline parameter, key=value (repeatable)."),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="Where steps run: local (process pool) or ray.")
    ] = "local",
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes (default: CPU count).")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster: ray://host:10001 or auto.")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every step, reusing nothing.")
    ] = False,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Experiment name (default: Default).")
    ] = None,
) -> None:
    """Run a pipeline, printing each step as it starts, finishes or is reused from the cache.
    Exits 1 if the pipeline FAILED.

    Example: loopline pipeline run flows:training --param n=100
    """
    from loopline.pipelines.runner import coerce_params, load_target
    from loopline.pipelines.runner import run as run_pipeline

    params = _params(param)
    pipe = load_target(target)
    _execute(
        ctx,
        lambda progress: run_pipeline(
            pipe,
            coerce_params(pipe, params),
            executor=executor,
            workers=workers,
            cache=not no_cache,
            experiment=experiment,
            on_event=progress,
            executor_options=_executor_options(ray_address),
        ),
    )


@app.command("resume")
def resume(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The failed pipeline run.")],
    executor: Annotated[str, typer.Option("--executor", help="local or ray.")] = "local",
    workers: Annotated[int | None, typer.Option("--workers", help="Worker processes.")] = None,
) -> None:
    """Run a failed pipeline again with its parameters, reusing the steps that finished."""
    from loopline.pipelines.runner import resume as resume_pipeline

    _execute(
        ctx,
        lambda progress: resume_pipeline(
            run_id, executor=executor, workers=workers, on_event=progress
        ),
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    max_results: Annotated[int, typer.Option("--max", help="Show at most this many.")] = 50,
) -> None:
    """Pipeline runs, newest first, in every active experiment."""
    runs = _pipeline_runs(ctx, max_results)
    table = Table("run id", "pipeline", "status", "started (UTC)", "duration", "steps")
    for r in runs:
        duration = f"{(r.info.end_time - r.info.start_time) / 1000:.1f}s" if r.info.end_time else ""
        table.add_row(
            r.run_id,
            r.tags.get("loopline.pipeline", r.info.run_name),
            str(r.info.status),
            when(r.info.start_time),
            duration,
            r.tags.get("loopline.pipeline.steps", ""),
        )
    console.print(table)


def _pipeline_runs(ctx: typer.Context, max_results: int) -> list[Any]:
    tracking = workspace(ctx).tracking
    ids = [e.experiment_id for e in tracking.list_experiments()]
    runs, _ = tracking.search_runs(
        ids, filter_string="tags.`loopline.pipeline` IS NOT NULL", max_results=max_results
    )
    return list(runs)


def _load(ctx: typer.Context, run_id: str) -> PipelineRun:
    from loopline.errors import NotFound
    from loopline.pipelines.results import PipelineRun

    if run_id == "latest":
        newest = _pipeline_runs(ctx, 1)
        if not newest:
            raise NotFound("no pipeline runs yet; start one with 'loopline pipeline run'")
        run_id = newest[0].run_id
    return PipelineRun.load(run_id, workspace(ctx))


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A pipeline run id, or 'latest'.")],
) -> None:
    """The steps of a pipeline run: state (finished, cached, failed, skipped), attempts,
    duration, outputs with their digests, and errors."""
    result = _load(ctx, run_id)
    console.print(
        Text.assemble(
            f"pipeline {result.name} run {result.run_id} ",
            (result.status, "green" if result.status == "FINISHED" else "bold red"),
            f"  started {when(result.start_ms)}",
        ),
        soft_wrap=True,
    )
    if result.params:
        console.print(
            "params: " + ", ".join(f"{k}={v}" for k, v in result.params.items()), soft_wrap=True
        )
    table = Table("step", "state", "attempts", "duration", "outputs", "run id", "error")
    for s in result.steps.values():
        outputs = ", ".join(f"{o.path} ({o.format}, {o.digest[:12]})" for o in s.outputs.values())
        table.add_row(
            s.name,
            Text(s.state, _STYLE.get(s.state, "")),
            str(s.attempts or ""),
            _seconds(s.duration_s),
            outputs,
            s.run_id or "",
            s.error or "",
        )
    console.print(table)


@app.command("graph")
def graph(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A pipeline run id, or 'latest'.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, mermaid or dot.")] = "text",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """The pipeline's graph with each step's state: as text, a mermaid flowchart or Graphviz
    dot (render with: dot -Tsvg graph.dot > graph.svg)."""
    from loopline.pipelines.dag import render

    result = _load(ctx, run_id)
    text = render(result.graph, fmt, {n: s.state for n, s in result.steps.items()})
    if out is None:
        console.print(text, end="", soft_wrap=True)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")
