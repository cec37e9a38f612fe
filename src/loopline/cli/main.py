"""The ``loopline`` command: global options, command groups and the one error handler."""

from __future__ import annotations

import sys
import traceback
from typing import Annotated

import typer
from rich.text import Text

from loopline._version import __version__
from loopline.cli import (
    artifacts,
    audit,
    blobs,
    config,
    data,
    db,
    demo,
    events,
    experiments,
    gc,
    init,
    lineage,
    models,
    pipeline,
    runs,
    scheduler,
    serve,
    server,
    users,
)
from loopline.cli.context import CliState, err_console
from loopline.errors import LooplineError

__all__ = ["app", "main"]

app = typer.Typer(
    name="loopline",
    help=(
        "Loopline: the machine-learning lifecycle as one closed loop. Data, experiments, models, "
        "serving and monitoring in one workspace, on SQLite + local files or PostgreSQL + S3."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loopline {__version__}")
        raise typer.Exit()


_VERBOSE = False


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            help="Workspace directory (default: nearest loopline.toml, "
            "else the current directory). Env: LOOPLINE_HOME.",
            show_default=False,
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Metadata store URI, e.g. sqlite:///path/loopline.db or "
            "postgresql://user@host/db. Env: LOOPLINE_STORE_URI.",
            show_default=False,
        ),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            help="Blob store: a directory or s3://bucket/prefix. Env: LOOPLINE_ARTIFACT_URI.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show full tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    global _VERBOSE
    _VERBOSE = verbose
    ctx.obj = CliState(
        flags={"home": home, "store_uri": store, "artifact_uri": artifacts}, verbose=verbose
    )


app.command("init")(init.init)
app.command("demo")(demo.demo)
app.command("gc")(gc.gc)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(config.app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(blobs.app, name="blobs")
app.add_typer(events.app, name="events")
app.add_typer(lineage.app, name="lineage")
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
app.add_typer(pipeline.app, name="pipeline")
app.command("server")(server.server)
app.command("serve")(serve.serve)
app.add_typer(users.users_app, name="users")
app.add_typer(users.tokens_app, name="tokens")
app.add_typer(users.permissions_app, name="permissions")
app.add_typer(audit.app, name="audit")
app.command("scheduler")(scheduler.scheduler)
app.add_typer(scheduler.schedule_app, name="schedule")


def main() -> None:
    """Console entry point: LooplineError becomes one ``Error:`` line and its exit code."""
    try:
        app()
    except LooplineError as exc:
        if _VERBOSE:
            traceback.print_exc()
        err_console.print(Text.assemble(("Error:", "bold red"), f" {exc.message}"), soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line, keep the trace for --verbose
        if _VERBOSE:
            traceback.print_exc()
        err_console.print(
            Text.assemble(
                ("Error:", "bold red"),
                f" internal error: {type(exc).__name__}: {exc} "
                "(run with --verbose for the traceback)",
            ),
            soft_wrap=True,
        )
        sys.exit(1)
