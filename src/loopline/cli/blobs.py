from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from loopline.cli.context import console, workspace
from loopline.cli.progress import byte_progress
from loopline.errors import IntegrityError, NotFound

app = typer.Typer(
    help="Low-level access to the content-addressed blob store.", no_args_is_help=True
)


def _tree_size(path: Path) -> int:
    return sum(
        (Path(d) / f).stat().st_size
        for d, _, files in os.walk(path)
        for f in files
        if (Path(d) / f).is_file()
    )


@app.command("put")
def put(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A file, or a directory (stored with a manifest).")],
) -> None:
    """Store a file or directory and print its digest. Identical content is stored once.

    Blobs stored this way are not referenced by any metadata, so 'loopline gc' removes them
    once they are older than the grace period.
    """
    ws = workspace(ctx)
    if path.is_dir():
        with byte_progress(f"storing {path}", _tree_size(path)) as advance:
            digest = ws.blobs.put_dir(path, advance)
        console.print(f"{digest}  (manifest of {path})")
    elif path.is_file():
        with byte_progress(f"storing {path.name}", path.stat().st_size) as advance:
            digest = ws.blobs.put_file(path, advance)
        console.print(digest)
    else:
        raise NotFound(f"{path} does not exist")


@app.command("get")
def get(
    ctx: typer.Context,
    digest: Annotated[str, typer.Argument(help="Blob digest (64 hex characters).")],
    dest: Annotated[Path, typer.Argument(help="File to write (or directory, with --dir).")],
    as_dir: Annotated[bool, typer.Option("--dir", help="DIGEST is a directory manifest.")] = False,
) -> None:
    """Write a blob to DEST, verifying its digest first; DEST is untouched on a mismatch."""
    ws = workspace(ctx)
    if as_dir:
        total = ws.blobs.read_manifest(digest).total_size
        with byte_progress(f"restoring {digest[:12]}", total) as advance:
            ws.blobs.get_dir(digest, dest, advance)
    else:
        with byte_progress(f"fetching {digest[:12]}", ws.blobs.stat(digest).size) as advance:
            ws.blobs.get_to_path(digest, dest, advance)
    console.print(f"wrote {dest}")


@app.command("verify")
def verify(
    ctx: typer.Context,
    digests: Annotated[
        list[str] | None, typer.Argument(help="Digests to check (default: all).")
    ] = None,
    delete_corrupt: Annotated[
        bool,
        typer.Option(
            "--delete-corrupt",
            help="Delete corrupt copies, so storing the original "
            "bytes again (e.g. 'loopline blobs put FILE') repairs them.",
        ),
    ] = False,
) -> None:
    """Re-hash blobs and report any whose content no longer matches its digest."""
    ws = workspace(ctx)
    targets = list(digests) if digests else list(ws.blobs.iter_digests())
    total = sum(ws.blobs.stat(d).size for d in targets)
    bad: list[str] = []
    with byte_progress(f"verifying {len(targets)} blobs", total) as advance:
        for digest in targets:
            if not ws.blobs.verify(digest, advance):
                bad.append(digest)
    if bad:
        for digest in bad:
            console.print(Text.assemble(("corrupt", "red"), f" {digest}"))
        if delete_corrupt:
            ws.blobs.delete_many(bad)  # at once: a pack holding several is rewritten once
            console.print(f"deleted {len(bad)} corrupt blobs; store their original bytes again")
        raise IntegrityError(f"{len(bad)} of {len(targets)} blobs are corrupt")
    console.print(f"{len(targets)} blobs verified, all intact")


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List stored blobs with size and write time."""
    ws = workspace(ctx)
    table = Table("digest", "size", "written (UTC)")
    for obj in itertools.islice(ws.blobs.iter_stored(), limit):
        digest = obj.key.replace("/", "")
        when = dt.datetime.fromtimestamp(obj.mtime, dt.UTC)
        if as_json:
            console.print(
                json.dumps({"digest": digest, "size": obj.size, "written": when.isoformat()}),
                soft_wrap=True,
            )
        else:
            table.add_row(digest, f"{obj.size:,}", when.strftime("%Y-%m-%d %H:%M:%S"))
    if not as_json:
        console.print(table)
