"""The ``loopline`` command: global options, command groups and the one error handler.

Command modules are listed by dotted path and imported only when needed: running one command
builds an app holding just that command (``loopline data add`` never imports the model, server
or pipeline modules), while ``loopline --help``, an unknown command and ``app`` (what tests
drive) get every command, in the order below."""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Iterable, Sequence
from typing import Annotated

import typer
from rich.text import Text

from loopline._version import __version__
from loopline.cli.context import CliState, err_console
from loopline.errors import LooplineError

__all__ = ["app", "main"]  # noqa: F822 - app is built on first access, by __getattr__


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loopline {__version__}")
        raise typer.Exit()


_VERBOSE = False


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


def _root_app() -> typer.Typer:
    """The root command with the global options, and no commands yet."""
    root = typer.Typer(
        name="loopline",
        help=(
            "Loopline: the machine-learning lifecycle as one closed loop. Data, experiments, "
            "models, serving and monitoring in one workspace, on SQLite + local files or "
            "PostgreSQL + S3."
        ),
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    root.callback()(_root)
    return root


COMMANDS: dict[str, tuple[str, str, bool]] = {
    # name: (module under loopline.cli, attribute, is a group), in the order --help lists them
    "init": ("init", "init", False),
    "demo": ("demo", "demo", False),
    "gc": ("gc", "gc", False),
    "experiments": ("experiments", "app", True),
    "runs": ("runs", "app", True),
    "artifacts": ("artifacts", "app", True),
    "config": ("config", "app", True),
    "db": ("db", "app", True),
    "blobs": ("blobs", "app", True),
    "events": ("events", "app", True),
    "lineage": ("lineage", "app", True),
    "data": ("data", "app", True),
    "models": ("models", "app", True),
    "pipeline": ("pipeline", "app", True),
    "server": ("server", "server", False),
    "serve": ("serve", "serve", False),
    "users": ("users", "users_app", True),
    "tokens": ("users", "tokens_app", True),
    "permissions": ("users", "permissions_app", True),
    "audit": ("audit", "app", True),
    "scheduler": ("scheduler", "scheduler", False),
    "schedule": ("scheduler", "schedule_app", True),
}
_VALUED_OPTIONS = frozenset({"--home", "--store", "--artifacts"})


def _register(target: typer.Typer, names: Iterable[str]) -> typer.Typer:
    for name in names:
        module, attribute, group = COMMANDS[name]
        obj = getattr(importlib.import_module(f"loopline.cli.{module}"), attribute)
        if group:
            target.add_typer(obj, name=name)
        else:
            target.command(name)(obj)
    return target


def command_named(argv: Sequence[str]) -> str | None:
    """The command ``argv`` (without the program name) runs, if it is one of :data:`COMMANDS`:
    the first word after the global options. None for ``--help``, ``--version`` or a typo, which
    need the full app (to list every command, or to suggest one)."""
    args = iter(argv)
    for arg in args:
        if arg in _VALUED_OPTIONS:
            next(args, None)
        elif arg in ("-h", "--help", "--version") or arg == "--":
            return None
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def __getattr__(name: str) -> typer.Typer:
    """``app``: the full command tree, built on first use."""
    if name == "app":
        full = globals()["app"] = _register(_root_app(), COMMANDS)
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console entry point: LooplineError becomes one ``Error:`` line and its exit code."""
    name = command_named(sys.argv[1:])
    target = _register(_root_app(), [name]) if name else __getattr__("app")
    try:
        target()
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
