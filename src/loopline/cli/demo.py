from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from loopline.cli.context import console

if TYPE_CHECKING:
    from loopline.demo import DemoStep


def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Run in this directory and keep it (default: a temp dir, removed afterwards).",
        ),
    ] = None,
) -> None:
    """Walk the Loopline lifecycle end to end on a throw-away embedded workspace.

    Needs no services: SQLite and local files. Data is generated, nothing is downloaded.
    """
    keep = directory is not None
    home = directory or Path(tempfile.mkdtemp(prefix="loopline-demo-"))
    console.print(Text.assemble(("Loopline demo", "bold"), f" in {home}\n"))

    def show(step: DemoStep) -> None:
        console.print(
            Text.assemble(
                ("✓ ", "green"),
                f"{step.name:<34} ",
                (f"{step.seconds * 1000:7.1f} ms", "dim"),
                f"  {step.result}",
            ),
            soft_wrap=True,
        )

    from loopline.demo import run_demo

    try:
        steps = run_demo(home, show)
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
    console.print(f"\n{len(steps)} steps done." + ("" if keep else " Temporary workspace removed."))
