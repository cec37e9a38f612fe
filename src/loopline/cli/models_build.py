"""``loopline models build``: a container build context for a registered model.

Its commands register on :data:`loopline.cli.models.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopline.cli.context import console, workspace
from loopline.cli.models import app

__all__ = ["build"]


@app.command("build")
def build(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="NAME@ALIAS",
            help="The registered version: NAME@ALIAS, NAME/VERSION or models:/NAME@ALIAS.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Directory to write the build context into (missing or empty)."
        ),
    ],
    base_image: Annotated[
        str, typer.Option(help="The Dockerfile's FROM image; a slim Python is enough.")
    ] = "python:3.11-slim",
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="The port the container serves on.")
    ] = 8080,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the contents of a non-empty --out.")
    ] = False,
) -> None:
    """Write a container build context: Dockerfile, pinned requirements.txt, the model's
    verified files and a README. Build it with `docker build`; no Docker is needed here.

    Example: loopline models build fraud@champion --out fraud-image
    """
    from loopline.models.packaging import build_context

    built = build_context(
        model,
        out,
        workspace=workspace(ctx),
        base_image=base_image,
        port=port,
        overwrite=overwrite,
        progress=lambda line: console.print(line, soft_wrap=True),
    )
    console.print(
        f"build and run it with: docker build -t {built.image_tag} {out} && "
        f"docker run --rm -p {port}:{port} {built.image_tag}",
        soft_wrap=True,
    )
