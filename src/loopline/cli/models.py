"""``loopline models``: the model registry from the shell. Each command is one call (or one
paged walk) on ``workspace.registry``; nothing here decides anything the service does not."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from loopline.cli.context import console, print_json, when, workspace
from loopline.entities import LineageEdge, Ref
from loopline.errors import InvalidInput, NotFound

if TYPE_CHECKING:  # imported when a command runs, not to print --help
    from loopline.registry.entities import ModelVersion, RegisteredModel
    from loopline.registry.service import RegistryService

app = typer.Typer(
    help="List, inspect, alias, download, trace and delete registered models.",
    no_args_is_help=True,
)

_JSON_LINES = "One JSON object per line."


def _latest(model: RegisteredModel) -> int | None:
    # latest_versions holds the newest version of each stage, so the newest overall is among them
    return max((v.version for v in model.latest_versions), default=None)


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias}->{version}" for alias, version in sorted(aliases.items()))


def _all_models(registry: RegistryService, filter_string: str) -> Iterator[RegisteredModel]:
    token: str | None = None
    while True:
        page, token = registry.search_registered_models(filter_string or None, 1000, None, token)
        yield from page
        if not token:
            return


def _versions(registry: RegistryService, name: str) -> list[ModelVersion]:
    """Every version of ``name``, newest first; NotFound names an unknown model."""
    registry.get_registered_model(name)
    quoted = name.replace("'", "''")
    found: list[ModelVersion] = []
    token: str | None = None
    while True:
        page, token = registry.search_model_versions(f"name = '{quoted}'", 10_000, None, token)
        found.extend(page)
        if not token:
            return found


def _model_row(model: RegisteredModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "latest_version": _latest(model),
        "aliases": dict(model.aliases),
        "description": model.description,
        "tags": dict(model.tags),
        "creation_timestamp": model.creation_timestamp,
        "last_updated_timestamp": model.last_updated_timestamp,
    }


def _versions_table(versions: list[ModelVersion]) -> Table:
    table = Table("version", "label", "aliases", "source", "run id", "stage", "created (UTC)")
    for v in versions:
        table.add_row(
            str(v.version),
            v.version_label,
            ", ".join(sorted(v.aliases)),
            v.source,
            v.run_id or "",
            v.current_stage,
            when(v.creation_timestamp),
        )
    return table


@app.command("list")
def list_(
    ctx: typer.Context,
    filter_string: Annotated[
        str,
        typer.Option(
            "--filter",
            "-f",
            help="Registry filter, e.g. \"name LIKE 'fr%'\" or \"tags.team = 'risk'\".",
        ),
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_LINES)] = False,
) -> None:
    """List registered models by name, with their latest version and aliases.

    Example: loopline models list --filter "name LIKE 'fr%'"
    """
    models = list(_all_models(workspace(ctx).registry, filter_string))
    if as_json:
        for model in models:
            print_json(_model_row(model))
        return
    table = Table("name", "latest", "aliases", "description", "updated (UTC)")
    for m in models:
        latest = _latest(m)
        table.add_row(
            m.name,
            "" if latest is None else str(latest),
            _aliases(m.aliases),
            m.description,
            when(m.last_updated_timestamp),
        )
    console.print(table)
    console.print(f"{len(models)} registered model(s)")


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object, its versions under 'versions'.")
    ] = False,
) -> None:
    """A registered model: description, aliases, tags and every version.

    Example: loopline models show fraud
    """
    registry = workspace(ctx).registry
    model = registry.get_registered_model(name)
    versions = _versions(registry, name)
    if as_json:
        row = _model_row(model)
        row["versions"] = [dataclasses.asdict(v) for v in versions]
        print_json(row)
        return
    console.print(Text(model.name, style="bold"))
    if model.description:
        console.print(model.description)
    console.print(
        f"created {when(model.creation_timestamp)}   updated "
        f"{when(model.last_updated_timestamp)}   aliases {_aliases(model.aliases) or '-'}"
    )
    for key in sorted(model.tags):
        console.print(f"tag {key} = {model.tags[key]}")
    if versions:
        console.print(_versions_table(versions))
    else:
        console.print("no versions yet")


@app.command("versions")
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_LINES)] = False,
) -> None:
    """The versions of a registered model, newest first.

    Example: loopline models versions fraud --json
    """
    found = _versions(workspace(ctx).registry, name)
    if as_json:
        for v in found:
            print_json(dataclasses.asdict(v))
        return
    console.print(_versions_table(found))


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. champion.")],
    version: Annotated[
        int | None,
        typer.Argument(
            metavar="VERSION", help="The version ALIAS should point at.", show_default=False
        ),
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove ALIAS instead.")] = False,
) -> None:
    """Point an alias at a version (it moves if set elsewhere), or remove it with --delete.

    Example: loopline models alias fraud champion 3; loopline models alias fraud champion --delete
    """
    registry = workspace(ctx).registry
    if delete:
        if version is not None:
            raise InvalidInput("give either VERSION or --delete, not both")
        registry.delete_alias(name, alias_name)
        console.print(f"alias {alias_name!r} removed from {name!r}")
        return
    if version is None:
        raise InvalidInput(
            f"which version should {alias_name!r} point at? e.g. "
            f"'loopline models alias {name} {alias_name} 1', or --delete to remove it"
        )
    registry.set_alias(name, alias_name, version)
    console.print(f"{name}@{alias_name} -> version {version}")


@app.command("download")
def download(
    ctx: typer.Context,
    uri: Annotated[
        str, typer.Argument(help="models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH.")
    ],
    dest: Annotated[str, typer.Argument(metavar="DIR", help="Where to write the model.")],
) -> None:
    """Copy a model's files into DIR, each verified against its digest; prints the directory.

    Example: loopline models download models:/fraud@champion ./fraud-model
    """
    from loopline.models import download as download_model

    console.print(str(download_model(uri, dest, workspace(ctx))))


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    version: Annotated[int, typer.Argument(metavar="VERSION", help="The version to promote.")],
    alias_name: Annotated[str, typer.Option("--alias", help="The alias to move, e.g. production.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the alias history.")] = "",
) -> None:
    """Move an alias to a version, recording who, when and why. The alias must still point
    where it did when the command looked: if another promotion moved it meanwhile, this one
    fails (exit 5) and changes nothing.

    When a promotion policy governs the alias, its checks run first (exit 6 naming the failed
    check) and, if it needs approval, a promotion request is created instead: other users
    complete it with 'loopline models approve REQUEST'.

    Example: loopline models promote fraud 3 --alias production --reason "beats v2 on AUC"
    """
    from loopline.registry.entities import PromotionRequest

    registry = workspace(ctx).registry
    try:
        current: int | None = registry.get_version_by_alias(name, alias_name).version
    except NotFound:
        registry.get_registered_model(name)  # an unknown model is the error to report
        current = None
    done = registry.promote(name, version, alias_name, reason=reason, expected_current=current)
    if isinstance(done, PromotionRequest):
        console.print(
            f"promotion request {done.request_id}: {name}@{alias_name} -> version {version} "
            f"needs {done.required_approvals} approval(s) by {done.approver_role}; "
            f"approve with: loopline models approve {done.request_id}"
        )
        return
    before = "unset" if done.previous_version is None else f"version {done.previous_version}"
    console.print(f"{name}@{alias_name}: {before} -> version {done.version}")


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    alias_name: Annotated[str, typer.Option("--alias", help="The alias to move back.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the alias history.")] = "",
) -> None:
    """Move an alias back to the version it pointed at before its last move.

    Example: loopline models rollback fraud --alias production --reason "v3 drifted"
    """
    move = workspace(ctx).registry.rollback(name, alias_name, reason=reason)
    console.print(f"{name}@{alias_name}: version {move.previous_version} -> version {move.version}")


@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    alias_name: Annotated[
        str | None, typer.Option("--alias", help="Only this alias.", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_LINES)] = False,
) -> None:
    """Every move of the model's aliases, oldest first: who, when, why, from and to.

    Example: loopline models history fraud --alias production
    """
    moves = workspace(ctx).registry.alias_history(name, alias_name)
    if as_json:
        for move in moves:
            print_json(dataclasses.asdict(move))
        return
    table = Table("time (UTC)", "alias", "from", "to", "by", "reason")
    for m in moves:
        table.add_row(
            when(m.time_ms),
            m.alias,
            "" if m.previous_version is None else str(m.previous_version),
            "(removed)" if m.version is None else str(m.version),
            m.actor,
            m.reason,
        )
    console.print(table)


def _edge_lines(root: Ref, edges: list[LineageEdge]) -> Iterator[str]:
    """``source --relation--> target`` per edge, walked from ``root`` upstream, indented by
    depth; a cycle is cut where it closes."""
    into: dict[Ref, list[LineageEdge]] = {}
    for edge in edges:
        into.setdefault(edge.target, []).append(edge)

    def walk(ref: Ref, level: int, path: frozenset[Ref]) -> Iterator[str]:
        for edge in into.get(ref, []):
            line = f"{'  ' * level}{edge.source} --{edge.relation}--> {edge.target}"
            if edge.source in path:
                yield line + " (cycle)"
                continue
            yield line
            yield from walk(edge.source, level + 1, path | {edge.source})

    yield from walk(root, 0, frozenset({root}))


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    model_version: Annotated[
        str, typer.Argument(metavar="NAME/VERSION", help="A model version, e.g. fraud/3.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_LINES)] = False,
) -> None:
    """What a model version came from: its run, the run's datasets, and so on upstream, then
    the code commit, environment and metrics recorded when it was registered.

    With --json, one object per lineage edge, then one {"provenance": ...} object.

    Example: loopline models lineage fraud/3
    """
    name, sep, number = model_version.rpartition("/")
    if not sep or not name:
        raise InvalidInput(f"{model_version!r} must look like NAME/VERSION, e.g. fraud/3")
    ws = workspace(ctx)
    found = ws.registry.get_model_version(name, number)  # NotFound names an unknown version
    root = Ref("model_version", f"{found.name}/{found.version}")
    edges = ws.lineage.upstream(root)
    if as_json:
        for e in edges:
            print_json(
                {
                    "source": str(e.source),
                    "target": str(e.target),
                    "relation": e.relation,
                    "depth": e.depth,
                }
            )
        print_json({"provenance": found.provenance, "version_label": found.version_label})
        return
    label = f" (version label {found.version_label})" if found.version_label else ""
    console.print(Text(f"{root}{label}", style="bold"))
    if not edges:
        console.print("no upstream lineage recorded")
    for line in _edge_lines(root, edges):
        console.print(line, soft_wrap=True)
    for line in _provenance_lines(found.provenance):
        console.print(line, soft_wrap=True)


def _provenance_lines(record: dict[str, Any]) -> Iterator[str]:
    """The code, environment, data and metrics a version was registered with."""
    git = record.get("git") or {}
    if git.get("commit"):
        state = "uncommitted changes" if git.get("dirty") else "clean"
        where = f" on {git['branch']}" if git.get("branch") else ""
        repo = f" ({git['repo_url']})" if git.get("repo_url") else ""
        yield f"code: commit {git['commit']}{where}, {state}{repo}"
    env = record.get("environment") or {}
    if env:
        parts = [f"python {env['python']}" if env.get("python") else "", env.get("platform", "")]
        if env.get("requirements_digest"):
            parts.append(f"requirements {env['requirements_digest'][:16]}")
        yield "environment: " + ", ".join(p for p in parts if p)
    for dataset in record.get("datasets") or []:
        yield f"dataset: {dataset.get('ref') or dataset.get('name')}"
    metrics = record.get("metrics") or {}
    if metrics:
        yield "metrics: " + ", ".join(f"{k}={v:g}" for k, v in metrics.items())


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    version: Annotated[
        int | None,
        typer.Option("--version", help="Delete only this version.", show_default=False),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a registered model (every version and alias) or one version; asks unless --yes.

    The model files stay with the runs that logged them.

    Example: loopline models delete fraud --version 2 --yes
    """
    registry = workspace(ctx).registry
    if version is None:
        what = f"registered model {name!r} with {len(_versions(registry, name))} version(s)"
    else:
        registry.get_model_version(name, version)  # NotFound before asking
        what = f"version {version} of registered model {name!r}"
    if not yes:
        typer.confirm(f"Delete {what}?", abort=True)
    if version is None:
        registry.delete_registered_model(name)
    else:
        registry.delete_model_version(name, version)
    console.print(f"deleted {what}")


# Commands kept in their own modules register on ``app`` when imported.
from loopline.cli import models_approvals, models_build, models_card  # noqa: E402, F401
