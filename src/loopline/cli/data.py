"""``loopline data``: dataset versions from the shell. Each command is one call on
``workspace.data``; the rules (what a version is, when one is created) live in the service."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from loopline.cli.context import console, err_console, print_json, when, workspace
from loopline.cli.progress import sized_progress

if TYPE_CHECKING:  # imported when a command runs, not to print --help
    from loopline.data.entities import DatasetVersion

app = typer.Typer(
    help="Version, inspect, compare, check out and validate datasets.", no_args_is_help=True
)

_JSON = "One JSON object per line."
VALIDATION_FAILED = 10
"""Exit status of 'data validate' when an error-severity expectation fails: distinct from
every error's exit code, so a gate can tell bad data from a broken command."""


def _what(v: DatasetVersion) -> str:
    from loopline.documents import size

    if v.kind == "table":
        return f"table, {v.row_count:,} rows x {len(v.schema or [])} columns, {size(v.total_size)}"
    return f"{v.file_count:,} files, {size(v.total_size)}"


@app.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="A file, a directory or a quoted glob.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    message: Annotated[str, typer.Option("--message", "-m", help="What changed.")] = "",
    files: Annotated[
        bool, typer.Option("--files", help="Store a CSV/Parquet file as a file, not a table.")
    ] = False,
) -> None:
    """Version PATH as dataset NAME. Unchanged content creates no new version (and says so);
    unchanged files are not even read again (a local index remembers their digests). A single
    CSV/TSV/Parquet file becomes a table: canonical Parquet with schema, row count and profile.

    Example: loopline data add data/ --name transactions -m "October extract"
    """
    service = workspace(ctx).data
    with sized_progress(f"adding {path}") as (advance, set_total):
        result = service.add(
            path,
            name,
            message=message,
            as_table=False if files else None,
            progress=advance,
            on_total=set_total,
        )
    v = result.version
    if result.created:
        console.print(
            f"{v.ref} created: {_what(v)} (hashed {result.hashed:,}, unchanged "
            f"{result.reused:,}); digest {v.digest[:16]}"
        )
    else:
        console.print(f"unchanged: the content equals {v.ref}; no new version")
    for row in (result.malformed or [])[:10]:
        err_console.print(f"skipped malformed line {row.line}: {row.reason}")
    if result.malformed and len(result.malformed) > 10:
        err_console.print(f"... and {len(result.malformed) - 10} more malformed lines")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=_JSON)] = False,
) -> None:
    """Datasets with their latest version.

    Example: loopline data list
    """
    found = workspace(ctx).data.list_datasets()
    if as_json:
        for d in found:
            print_json(dataclasses.asdict(d))
        return
    table = Table("name", "latest", "versions", "updated (UTC)")
    for d in found:
        latest = str(d.latest_version or "-")
        table.add_row(d.name, latest, str(d.version_count), when(d.updated_ms))
    console.print(table)
    console.print(f"{len(found)} dataset(s)")


@app.command("versions")
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset name.")],
    as_json: Annotated[bool, typer.Option("--json", help=_JSON)] = False,
) -> None:
    """Every version of a dataset, newest first.

    Example: loopline data versions transactions
    """
    found = workspace(ctx).data.versions(name)
    if as_json:
        for v in found:
            print_json(dataclasses.asdict(v))
        return
    table = Table("version", "kind", "content", "digest", "by", "created (UTC)", "message")
    for v in found:
        table.add_row(
            v.ref, v.kind, _what(v), v.digest[:12], v.created_by, when(v.created_ms), v.message
        )
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME@VERSION", help="e.g. transactions@3.")],
    list_files: Annotated[bool, typer.Option("--files", help="List every file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """One version: what it holds, its schema and profile (tables) or its files.

    Example: loopline data show transactions@latest --files
    """
    service = workspace(ctx).data
    v = service.resolve(ref)
    profile = service.profile(v)
    entries = service.manifest(v).entries if list_files else ()
    if as_json:
        row = dataclasses.asdict(v)
        row["profile"] = profile
        if list_files:
            row["files"] = [{"path": e.path, "size": e.size, "digest": e.digest} for e in entries]
        print_json(row)
        return
    console.print(Text(v.ref, style="bold") + Text(f"  {_what(v)}"))
    console.print(f"digest {v.digest}")
    console.print(f"created {when(v.created_ms)} by {v.created_by}  {v.message}".rstrip())
    if v.schema:
        table = Table("column", "type", "nulls", "distinct", "min", "max", "mean")
        columns = (profile or {}).get("columns", {})
        for col in v.schema:
            stats = columns.get(col["name"], {})
            table.add_row(
                col["name"],
                col["type"],
                str(stats.get("nulls", "")),
                str(stats.get("distinct", "")),
                _short(stats.get("min")),
                _short(stats.get("max")),
                _short(stats.get("mean")),
            )
        console.print(table)
    for e in entries:
        console.print(f"{e.digest[:12]}  {e.size:>12,}  {e.path}", soft_wrap=True)


def _short(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)[:24]


@app.command("checkout")
def checkout(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME@VERSION", help="e.g. transactions@3.")],
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Where to write the files.")],
    overwrite: Annotated[bool, typer.Option(help="Write into a non-empty directory.")] = False,
) -> None:
    """Write a version's files into DIR, each verified against its digest.

    Example: loopline data checkout transactions@2 old-extract
    """
    service = workspace(ctx).data
    v = service.resolve(ref)
    out = service.checkout(v, directory, overwrite=overwrite)
    console.print(f"{v.ref}: {v.file_count:,} file(s) written to {out}")


@app.command("diff")
def diff(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(metavar="OLD", help="e.g. transactions@2.")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="e.g. transactions@3.")],
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="Key column(s) to match rows of two tables; repeatable."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """What changed between two versions: files, and for tables the schema, row count, rows
    added/removed/changed by --key, and column statistics.

    Example: loopline data diff transactions@2 transactions@3 --key id
    """
    result = workspace(ctx).data.diff(old, new, key=key)
    if as_json:
        print_json(result)
        return
    files = result["files"]
    if result["same_content"]:
        console.print(f"{result['old']} and {result['new']} hold the same content")
        return
    console.print(
        f"{result['old']} -> {result['new']}: {len(files['added'])} added, "
        f"{len(files['removed'])} removed, {len(files['modified'])} modified, "
        f"{files['unchanged']} unchanged file(s)"
    )
    for label in ("added", "removed", "modified"):
        for path in files[label][:50]:
            console.print(f"  {label[0].upper()} {path}", soft_wrap=True)
    table = result.get("table")
    if table:
        console.print(json.dumps(table, indent=2, sort_keys=True, default=str), soft_wrap=True)


@app.command("infer-expectations")
def infer_expectations(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME@VERSION", help="A known-good version.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the suite (YAML).")
    ] = Path("expectations.yaml"),
) -> None:
    """Write an expectation suite inferred from a known-good tabular version: columns and
    types, null fractions, ranges, allowed values, uniqueness, row count, and drift checks
    against this version. Edit it, then gate later versions with 'loopline data validate'.

    Example: loopline data infer-expectations transactions@3 -o expectations.yaml
    """
    from loopline.data.expectations import save_suite

    suite = workspace(ctx).data.infer_expectations(ref)
    save_suite(suite, out)
    console.print(f"{len(suite.expectations)} expectations inferred from {ref} -> {out}")


@app.command("validate")
def validate(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME@VERSION", help="The version to check.")],
    suite: Annotated[Path, typer.Option("--suite", "-s", help="Expectation suite (YAML/.py).")],
    reference: Annotated[
        str | None,
        typer.Option(
            help="Reference version for drift checks (default: the suite's).", show_default=False
        ),
    ] = None,
    report_dir: Annotated[
        Path, typer.Option("--report-dir", help="Where to write report.json and report.html.")
    ] = Path("validation"),
) -> None:
    """Validate a tabular version against a suite. Writes a JSON and an HTML report naming
    every failed expectation with counts and sample failing rows, and exits with status 10
    when an error-severity expectation fails (warnings never fail), so pipelines and CI can
    gate on it.

    Example: loopline data validate transactions@4 --suite expectations.yaml
    """
    from loopline.data.reports import write_report

    report = workspace(ctx).data.validate(ref, suite, reference=reference)
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = write_report(report, report_dir / "report.json")
    html_path = write_report(report, report_dir / "report.html")
    stats = report.statistics
    for result in report.results:
        if result.success:
            continue
        mark = "warning" if result.severity == "warning" else "FAILED"
        count = (
            f" ({result.unexpected_count:,} rows)" if result.unexpected_count is not None else ""
        )
        console.print(f"{mark} {result.name}{count}: {result.detail}", soft_wrap=True)
    verdict = "passed" if report.success else "FAILED"
    console.print(
        f"{ref}: {verdict}: {stats['passed']} of {stats['evaluated']} expectations passed, "
        f"{stats['failed']} failed, {stats['warnings']} warning(s); reports: {json_path}, "
        f"{html_path}"
    )
    if not report.success:
        raise typer.Exit(VALIDATION_FAILED)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset name.")],
    version: Annotated[
        int | None, typer.Option("--version", help="Only this version.", show_default=False)
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a version, or a dataset with all its versions (the bytes go at the next
    'loopline gc' unless something else still uses them).

    Example: loopline data delete transactions --version 1 --yes
    """
    service = workspace(ctx).data
    what = f"{name}@{version}" if version else f"dataset {name!r} and every version"
    if version:
        service.resolve(f"{name}@{version}")
    else:
        service.get_dataset(name)
    if not yes:
        typer.confirm(f"Delete {what}?", abort=True)
    service.delete(name, version)
    console.print(f"deleted {what}")


@app.command("datasheet")
def datasheet(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME@VERSION", help="e.g. transactions@3.")],
    fmt: Annotated[str, typer.Option("--format", help="md (Markdown) or html.")] = "md",
    sheet_file: Annotated[
        Path | None,
        typer.Option(
            "--sheet",
            help="YAML with motivation, composition, licence, ...; default: the version's "
            "own datasheet.yaml (file datasets).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the datasheet here instead of to stdout.", show_default=False
        ),
    ] = None,
) -> None:
    """A datasheet: motivation, composition, collection, labeling, licence and limitations
    (from YAML), contents (schema and profile, or files), version history, validations and
    lineage of one dataset version.

    Example: loopline data datasheet transactions@3 --format html --sheet sheet.yaml --out tx.html
    """
    from loopline.data.datasheet import datasheet as render_datasheet
    from loopline.documents import atomic_write

    text = render_datasheet(ref, format=fmt, sheet_yaml=sheet_file, workspace=workspace(ctx))
    if out is None:
        typer.echo(text, nl=False)
        return
    atomic_write(out, text)  # never half a sheet behind a name someone already reads
    console.print(f"wrote {out}", soft_wrap=True)
