"""``loopline models card``: a model card rendered from registry metadata.

Its commands register on :data:`loopline.cli.models.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopline.cli.context import console, workspace
from loopline.cli.models import app

__all__ = ["card"]


@app.command("card")
def card(
    ctx: typer.Context,
    model_ref: Annotated[
        str,
        typer.Argument(
            metavar="NAME/VERSION",
            help="A model version, e.g. fraud/3, or an alias, e.g. fraud@champion.",
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", help="md (Markdown) or html.")] = "md",
    card_file: Annotated[
        Path | None,
        typer.Option(
            "--card",
            help="YAML with intended use, limitations, ...; default: the model's card.yaml.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the card here instead of to stdout.", show_default=False
        ),
    ] = None,
) -> None:
    """A model card: intended use and limitations (from YAML), training data, metrics,
    parameters, signature, lineage, environment and alias history of one model version.

    Example: loopline models card fraud@champion --format html --card card.yaml --out fraud.html
    """
    from loopline.documents import atomic_write
    from loopline.models.card import card as render_card

    text = render_card(model_ref, format=fmt, card_yaml=card_file, workspace=workspace(ctx))
    if out is None:
        typer.echo(text, nl=False)
        return
    atomic_write(out, text)  # never half a card behind a name someone already reads
    console.print(f"wrote {out}", soft_wrap=True)
