"""Model cards: one page that says what a registered model version is, what it is for, what it
was trained on and how it got where it is, rendered as Markdown or self-contained HTML.

Everything factual comes from the registry: the version's provenance snapshot (or, for
versions registered before provenance was recorded, the run it came from), its ``MLmodel``
file, its lineage and its alias history. What only people know (intended use, limitations,
ethical considerations, ...) comes from a small YAML document, see :data:`CARD_FIELDS` and
``docs/model-cards.md``: passed in (``--card FILE``) or shipped as ``card.yaml`` inside the
model directory.

    print(ll.models.card("fraud@champion"))                  # Markdown
    html = ll.models.card("fraud/3", format="html", card_yaml="card.yaml")

Collecting (:func:`collect_card`) and rendering (:func:`render_markdown`,
:func:`render_html`) are separate so later sections (evaluation, fairness, explanations) add a
field and a template block, not a new code path.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.documents import (
    UserYaml,
    parse_user_yaml,
    parse_user_yaml_text,
    render,
    user_sections,
)
from loopline.entities import LineageEdge, Ref
from loopline.errors import InvalidInput, LooplineError, NotFound
from loopline.models.loading import download_model, read_mlmodel, source_files
from loopline.models.refs import resolve_version
from loopline.registry.entities import ModelVersion
from loopline.registry.service import RegistryService

if TYPE_CHECKING:
    from loopline.workspace import Workspace

__all__ = [
    "CARD_FIELDS",
    "CARD_FILE",
    "FORMATS",
    "DatasetVersion",
    "HistoryEntry",
    "ModelCard",
    "SignatureField",
    "UserSections",
    "approval_history",
    "card",
    "collect_card",
    "parse_card_yaml",
    "render_html",
    "render_markdown",
    "resolve_version",
]

CARD_FILE = "card.yaml"
"""A file of this name inside the model directory is the card's YAML when none is passed."""
TEXT_FIELDS = (
    "intended_use",
    "out_of_scope_use",
    "limitations",
    "ethical_considerations",
    "caveats",
)
"""Prose fields: a string (a paragraph) or a list of strings (bullets)."""
LIST_FIELDS = ("owners", "references")
"""A list of strings (a single string is a list of one)."""
CARD_FIELDS = (*TEXT_FIELDS, *LIST_FIELDS, "extra")
"""Every top-level key a card's YAML may have; ``extra`` maps free-form names to values."""
FORMATS = ("md", "html")
_WHAT = "model card"
"""How errors about the YAML name it."""
_MLMODEL_FILES = ("MLmodel", "requirements.txt", CARD_FILE)

CardSource = UserYaml
"""Where the user-written part comes from: a YAML file's path, an already-parsed mapping, or
None to use the model directory's ``card.yaml`` if it has one."""


# -- the card ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class UserSections:
    """What people write about a model. Text fields hold a string (rendered as a paragraph) or
    a list of strings (rendered as bullets); empty means not documented."""

    intended_use: str | list[str] = ""
    out_of_scope_use: str | list[str] = ""
    limitations: str | list[str] = ""
    ethical_considerations: str | list[str] = ""
    caveats: str | list[str] = ""
    owners: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    extra: dict[str, str | list[str]] = field(default_factory=dict)
    origin: str = ""
    """Where the YAML came from (a path, ``card.yaml in the model directory``), or empty."""


@dataclass(frozen=True)
class SignatureField:
    """One input or output column (or tensor) of the model's signature."""

    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: str = ""
    digest: str = ""


@dataclass(frozen=True)
class HistoryEntry:
    """One line of the approvals and alias history, oldest first: an alias move, a promotion
    request, or an approver's decision (``kind`` says which)."""

    time_ms: int
    actor: str
    kind: str
    alias: str
    from_version: int | None
    to_version: int | None
    reason: str = ""


@dataclass(frozen=True)
class ModelCard:
    """Everything a card shows, collected once so every format renders the same facts."""

    name: str
    version: int
    created_ms: int
    version_label: str = ""
    aliases: list[str] = field(default_factory=list)
    created_by: str = ""
    description: str = ""
    model_description: str = ""
    """The registered model's description (the version's own is :attr:`description`)."""
    tags: dict[str, str] = field(default_factory=dict)
    source: str = ""
    stage: str = ""
    user: UserSections = field(default_factory=UserSections)
    flavors: dict[str, dict[str, str]] = field(default_factory=dict)
    inputs: list[SignatureField] = field(default_factory=list)
    outputs: list[SignatureField] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    run_id: str = ""
    run_name: str = ""
    experiment_id: str = ""
    datasets: list[DatasetVersion] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    git: dict[str, str] = field(default_factory=dict)
    """``commit``, ``branch``, ``repo_url``, ``dirty`` (``yes``/``no``), those known."""
    environment: dict[str, str] = field(default_factory=dict)
    """``python``, ``platform``, ``requirements_digest``, those known."""
    lineage: list[LineageEdge] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    provenance_from: str = ""
    """``registration`` (snapshotted then), ``run`` (read from the run now) or empty."""
    notes: list[str] = field(default_factory=list)
    """Why a section is emptier than it should be (a deleted run, unreadable files)."""
    generated_ms: int = 0


# -- the user-written YAML ---------------------------------------------------------------------
def parse_card_yaml(source: CardSource) -> UserSections:
    """Read and check a card's YAML (a path or a parsed mapping). Strict, because a misspelt
    ``limitation:`` silently dropped would publish a card claiming no limitations: an unknown
    key or a wrongly typed field is InvalidInput naming it (see
    :func:`loopline.documents.parse_user_yaml`)."""
    return UserSections(
        **parse_user_yaml(source, what=_WHAT, text_fields=TEXT_FIELDS, list_fields=LIST_FIELDS)
    )


def _sections_from_text(text: str, origin: str) -> UserSections:
    return UserSections(
        **parse_user_yaml_text(
            text, origin=origin, what=_WHAT, text_fields=TEXT_FIELDS, list_fields=LIST_FIELDS
        )
    )


# -- what the registry knows -------------------------------------------------------------------
def approval_history(registry: RegistryService, name: str, version: int) -> list[HistoryEntry]:
    """Everything that decided whether ``version`` served, oldest first: promotion requests
    for it (who asked, who approved or rejected, with their comments) and moves of the
    model's aliases onto or off it (who put it into or took it out of service, and why)."""
    entries: list[HistoryEntry] = []
    for request in registry.list_promotion_requests(name, version=version):
        entries.append(
            HistoryEntry(
                time_ms=request.created_ms,
                actor=request.requested_by,
                kind=f"promotion {request.request_id} requested ({request.state.lower()})",
                alias=request.alias,
                from_version=request.expected_version,
                to_version=request.version,
                reason=request.reason,
            )
        )
        entries.extend(
            HistoryEntry(
                time_ms=d.time_ms,
                actor=d.actor,
                kind=f"promotion {request.request_id} {'approved' if d.approved else 'rejected'}",
                alias=request.alias,
                from_version=request.expected_version,
                to_version=request.version,
                reason=d.comment,
            )
            for d in request.decisions
        )
    moves = [
        HistoryEntry(
            time_ms=move.time_ms,
            actor=move.actor,
            kind="alias moved",
            alias=move.alias,
            from_version=move.previous_version,
            to_version=move.version,
            reason=move.reason,
        )
        for move in registry.alias_history(name)
        if version in (move.version, move.previous_version)
    ]
    # A request, its decisions and the move they cause can share a millisecond: the stable
    # sort keeps that causal order.
    return sorted([*entries, *moves], key=lambda e: e.time_ms)


def _model_files(ws: Workspace, mv: ModelVersion) -> tuple[dict[str, bytes], str]:
    """The small text files a card reads (``MLmodel``, ``requirements.txt``, ``card.yaml``),
    and a note when they could not be read. Locally only those blobs are read, never the
    (possibly large) weights; through a server the blobs are not reachable, so the model is
    downloaded whole into a scratch directory."""
    if not ws.remote:
        if mv.files_digest:
            found = {e.path: e.digest for e in ws.blobs.read_manifest(mv.files_digest).entries}
        else:
            rows = source_files(ws, mv.source)
            found = {r.path: r.digest for r in rows} if rows is not None else {}
        if found:
            return {p: ws.blobs.read_bytes(found[p]) for p in _MLMODEL_FILES if p in found}, ""
    with tempfile.TemporaryDirectory(prefix="loopline-card-") as tmp:
        try:
            directory = download_model(f"models:/{mv.name}/{mv.version}", Path(tmp) / "m", ws)
        except LooplineError as exc:
            return {}, f"the model's files could not be read: {exc.message}"
        return {
            p: (directory / p).read_bytes() for p in _MLMODEL_FILES if (directory / p).is_file()
        }, ""


def _signature_fields(schema: Any) -> list[SignatureField]:
    """MLflow stores each side of a signature as a JSON string of column (or tensor) specs."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError:
            return []
    fields: list[SignatureField] = []
    for spec in schema if isinstance(schema, list) else []:
        if not isinstance(spec, Mapping):
            continue
        kind = str(spec.get("type", ""))
        tensor = spec.get("tensor-spec")
        if kind == "tensor" and isinstance(tensor, Mapping):
            kind = f"tensor {tensor.get('dtype', '')} {list(tensor.get('shape') or [])}"
        fields.append(
            SignatureField(str(spec.get("name", "")), kind, bool(spec.get("required", True)))
        )
    return fields


def _flavors(doc: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    flavors = doc.get("flavors") or {}
    return {
        name: {
            k: str(v)
            for k, v in sorted((conf or {}).items())
            if isinstance(v, str | int | float) and not isinstance(v, bool)
        }
        for name, conf in sorted(flavors.items())
        if isinstance(conf, Mapping) or conf is None
    }


def _requirements(text: str) -> list[str]:
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith(("#", "-"))]


def _str_dict(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _float_dict(value: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, number in value.items() if isinstance(value, Mapping) else ():
        try:
            out[str(key)] = float(number)
        except (TypeError, ValueError):
            continue
    return out


def _yes_no(value: Any) -> str:
    if isinstance(value, str):
        value = value.strip().lower() in ("true", "yes", "1")
    return "yes" if value else "no"


def _provenance(ws: Workspace, mv: ModelVersion) -> tuple[dict[str, Any], str, str]:
    """The version's provenance in the registry's shape, where it came from, and a note. Older
    versions have none snapshotted: their run is read instead, so every version has a card."""
    if mv.provenance:
        return dict(mv.provenance), "registration", ""
    if not mv.run_id:
        return {}, "", ""
    try:
        run = ws.tracking.get_run(mv.run_id)
    except NotFound:
        return {"run_id": mv.run_id}, "", f"run {mv.run_id} no longer exists"
    tags = run.tags
    git = {
        "commit": tags.get("mlflow.source.git.commit"),
        "branch": tags.get("mlflow.source.git.branch"),
        "repo_url": tags.get("mlflow.source.git.repoURL"),
        "dirty": tags.get("loopline.git.dirty"),
    }
    environment = {"python": tags.get("loopline.python"), "platform": tags.get("loopline.platform")}
    return (
        {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "run_name": run.info.run_name,
            "git": {k: v for k, v in git.items() if v is not None},
            "environment": {k: v for k, v in environment.items() if v is not None},
            "metrics": dict(run.metrics),
            "params": dict(run.params),
        },
        "run",
        "",
    )


def _datasets(provenance: Mapping[str, Any], lineage: list[LineageEdge]) -> list[DatasetVersion]:
    """The snapshot's datasets; without one, the dataset objects upstream in the lineage graph
    (ids read as ``name@version``)."""
    listed = provenance.get("datasets")
    if isinstance(listed, list):
        return [
            DatasetVersion(
                str(d.get("name", "")), str(d.get("version", "")), str(d.get("digest", ""))
            )
            for d in listed
            if isinstance(d, Mapping)
        ]
    found: dict[Ref, DatasetVersion] = {}
    for edge in lineage:
        if edge.source.kind in ("dataset", "dataset_version") and edge.source not in found:
            name, sep, version = edge.source.id.rpartition("@")
            found[edge.source] = DatasetVersion(name, version) if sep else DatasetVersion(version)
    return list(found.values())


def collect_card(
    workspace: Workspace, name: str, version: int | str, card_yaml: CardSource = None
) -> ModelCard:
    """Gather every fact a card shows for ``name``/``version``. ``card_yaml`` (a path or a
    mapping) gives the user-written sections; without it the model directory's ``card.yaml``
    is used when present. Missing facts leave sections empty with a note saying why: a card for
    an old or half-recorded version is still worth reading."""
    registry = workspace.registry
    mv = registry.get_model_version(name, version)
    model = registry.get_registered_model(mv.name)
    notes: list[str] = []
    files, files_note = _model_files(workspace, mv)
    notes += [files_note] if files_note else []

    user = parse_card_yaml(card_yaml)
    if card_yaml is None and CARD_FILE in files:
        text = files[CARD_FILE].decode("utf-8", errors="replace")
        user = _sections_from_text(text, f"{CARD_FILE} in the model directory")

    mlmodel: dict[str, Any] = {}
    if "MLmodel" in files:
        with tempfile.TemporaryDirectory(prefix="loopline-card-") as tmp:
            (Path(tmp) / "MLmodel").write_bytes(files["MLmodel"])
            try:
                mlmodel = read_mlmodel(tmp)
            except InvalidInput as exc:
                notes.append(f"the MLmodel file could not be read: {exc.message}")
    signature = mlmodel.get("signature") or {}
    requirements = files.get("requirements.txt", b"").decode("utf-8", errors="replace")

    lineage = workspace.lineage.upstream(Ref("model_version", f"{mv.name}/{mv.version}"))
    prov, prov_from, prov_note = _provenance(workspace, mv)
    notes += [prov_note] if prov_note else []
    git = _str_dict(prov.get("git"))
    if "dirty" in git:
        git["dirty"] = _yes_no(prov["git"]["dirty"])
    return ModelCard(
        name=mv.name,
        version=mv.version,
        created_ms=mv.creation_timestamp,
        version_label=mv.version_label,
        aliases=sorted(mv.aliases),
        created_by=mv.user_id,
        description=mv.description,
        model_description=model.description,
        tags=dict(sorted(mv.tags.items())),
        source=mv.source,
        stage=str(mv.current_stage),
        user=user,
        flavors=_flavors(mlmodel),
        inputs=_signature_fields(signature.get("inputs") if isinstance(signature, dict) else None),
        outputs=_signature_fields(
            signature.get("outputs") if isinstance(signature, dict) else None
        ),
        requirements=_requirements(requirements),
        run_id=str(prov.get("run_id") or mv.run_id or ""),
        run_name=str(prov.get("run_name") or ""),
        experiment_id=str(prov.get("experiment_id") or ""),
        datasets=_datasets(prov, lineage),
        metrics=dict(sorted(_float_dict(prov.get("metrics")).items())),
        params=dict(sorted(_str_dict(prov.get("params")).items())),
        git=git,
        environment=_str_dict(prov.get("environment")),
        lineage=lineage,
        history=approval_history(registry, mv.name, mv.version),
        provenance_from=prov_from,
        notes=notes,
        generated_ms=time.time_ns() // 1_000_000,
    )


# -- rendering ---------------------------------------------------------------------------------
_SECTION_TITLES = {
    "intended_use": "Intended use",
    "out_of_scope_use": "Out-of-scope use",
    "limitations": "Limitations",
    "ethical_considerations": "Ethical considerations",
    "caveats": "Caveats and recommendations",
}
_ALWAYS_SHOWN = ("intended_use", "limitations", "ethical_considerations")
"""Shown as "Not documented" when empty: a reader should see that nobody wrote them."""


def _render(card: ModelCard, template: str, html: bool) -> str:
    sections = user_sections(card.user, _SECTION_TITLES, _ALWAYS_SHOWN)
    return render("loopline.models", template, html=html, card=card, sections=sections)


def render_markdown(card: ModelCard) -> str:
    """The card as GitHub-flavoured Markdown; user prose is kept as written (it may be
    Markdown), table cells are escaped."""
    return _render(card, "card.md.j2", html=False)


def render_html(card: ModelCard) -> str:
    """The card as one self-contained HTML page (inline CSS, no scripts or external assets),
    every value escaped, so it can be mailed, attached or served as is."""
    return _render(card, "card.html.j2", html=True)


def card(
    name_ref: str,
    *,
    format: str = "md",
    card_yaml: CardSource = None,
    workspace: Workspace | None = None,
) -> str:
    """The model card of ``name_ref`` (``fraud/3``, ``fraud@champion``) as Markdown
    (``format="md"``) or HTML (``"html"``), from the current workspace unless one is given."""
    if format not in FORMATS:
        raise InvalidInput(f"model card format must be one of {', '.join(FORMATS)}, got {format!r}")
    if workspace is None:
        from loopline.api import current_workspace

        workspace = current_workspace()
    mv = resolve_version(workspace.registry, name_ref)
    collected = collect_card(workspace, mv.name, mv.version, card_yaml)
    return render_html(collected) if format == "html" else render_markdown(collected)
