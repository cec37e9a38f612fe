from __future__ import annotations

import typer

from loopline.cli.context import console, resolved

app = typer.Typer(help="Manage the metadata database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply pending migrations (opening a workspace does this too; this makes it explicit)."""
    from loopline.config import mask_uri
    from loopline.workspace import make_store

    uri = resolved(ctx).settings.store_uri
    store = make_store(uri, migrate_on_open=False)
    try:
        before = store.schema_revision()
        after = store.upgrade()
    finally:
        store.close()
    if before == after:
        console.print(f"{mask_uri(uri)}: already at revision {after}")
    else:
        console.print(f"{mask_uri(uri)}: upgraded {before or '(empty)'} -> {after}")


@app.command("current")
def current(ctx: typer.Context) -> None:
    """Print the database's schema revision and the newest one this Loopline ships."""
    from loopline.workspace import make_store

    uri = resolved(ctx).settings.store_uri
    store = make_store(uri, migrate_on_open=False)
    try:
        revision, head = store.schema_revision(), store.latest_revision()
    finally:
        store.close()
    status = "up to date" if revision == head else "needs 'loopline db upgrade'"
    console.print(f"current: {revision or '(empty)'}\nhead:    {head}\n{status}")
