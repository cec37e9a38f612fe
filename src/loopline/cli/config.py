from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from loopline.cli.context import console, resolved

app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the effective settings and where each came from (flag, env, file, default).

    Precedence: CLI flags > LOOPLINE_* environment > loopline.toml > defaults. Secrets and
    passwords inside URIs are masked.
    """
    res = resolved(ctx)
    shown = res.settings.display()
    if as_json:
        console.print_json(
            json.dumps(
                {k: {"value": v, "source": res.sources.get(k, "default")} for k, v in shown.items()}
            )
        )
        return
    table = Table("setting", "value", "source", title="Effective settings", title_justify="left")
    for name, value in shown.items():
        table.add_row(name, value, res.sources.get(name, "default"))
    console.print(table)
    console.print(f"config file: {res.config_file or '(none found)'}")
