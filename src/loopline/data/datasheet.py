"""Datasheets: one page that documents a dataset version, rendered as Markdown or
self-contained HTML, after Gebru et al., "Datasheets for Datasets" (2018/2021).

Everything factual comes from the workspace: the version's record (kind, digest, who and
when), its contents (a table's schema and profile, or the list of files), the dataset's
version history, the validations run on it (``dataset.validated`` events) and its lineage
(runs that read it, model versions registered from those runs). What only people know
(motivation, composition, collection process, labeling, licence, known limitations, ...)
comes from a small YAML document, see :data:`SHEET_FIELDS` and ``docs/datasheets.md``:
passed in (``--sheet FILE``) or shipped as ``datasheet.yaml`` at the root of a file
dataset's version.

    print(ll.data.datasheet("transactions@3"))                  # Markdown
    html = ll.data.datasheet("transactions@3", format="html", sheet_yaml="sheet.yaml")

Collecting (:func:`collect_datasheet`) and rendering (:func:`render_markdown`,
:func:`render_html`) are separate, as for model cards, so a new section is a field and a
template block, not a new code path.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopline.data.entities import DatasetKind, DatasetVersion
from loopline.documents import (
    UserYaml,
    parse_user_yaml,
    parse_user_yaml_text,
    render,
    user_sections,
)
from loopline.entities import Ref
from loopline.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from loopline.workspace import Workspace

__all__ = [
    "FORMATS",
    "SHEET_FIELDS",
    "SHEET_FILE",
    "ColumnSummary",
    "Datasheet",
    "FileEntry",
    "ModelEntry",
    "RunEntry",
    "SheetSections",
    "ValidationEntry",
    "VersionEntry",
    "collect_datasheet",
    "datasheet",
    "parse_sheet_yaml",
    "render_html",
    "render_markdown",
]

SHEET_FILE = "datasheet.yaml"
"""A file of this name at the root of a file dataset's version is its sheet when none is
passed."""
TEXT_FIELDS = (
    "motivation",
    "composition",
    "collection_process",
    "preprocessing",
    "labeling",
    "uses",
    "distribution",
    "licence",
    "maintenance",
    "known_limitations",
)
"""Prose fields, in the order the sheet shows them: a string (a paragraph) or a list of
strings (bullets)."""
LIST_FIELDS = ("owners", "references")
"""A list of strings (a single string is a list of one)."""
SHEET_FIELDS = (*TEXT_FIELDS, *LIST_FIELDS, "extra")
"""Every top-level key a sheet's YAML may have; ``extra`` maps free-form names to values."""
FORMATS = ("md", "html")
RENAMED = {"license": "licence"}
"""One spelling per field: a second one would let two keys disagree in one file. Using the
other is an error that names the accepted one."""
MAX_FILES = 50
"""Files listed by name; a sheet is for reading, the manifest has them all."""
MAX_VERSIONS = 50
"""Newest versions listed in the history."""
MAX_VALIDATIONS = 50
"""Newest validations listed."""
TOP_VALUES = 3
"""Most frequent values shown per text or boolean column."""
_WHAT = "datasheet"

_SECTION_TITLES = {
    "motivation": "Motivation",
    "composition": "Composition",
    "collection_process": "Collection process",
    "preprocessing": "Preprocessing",
    "labeling": "Labeling",
    "uses": "Uses",
    "distribution": "Distribution",
    "licence": "Licence",
    "maintenance": "Maintenance",
    "known_limitations": "Known limitations",
}
_ALWAYS_SHOWN = (
    "motivation",
    "composition",
    "collection_process",
    "labeling",
    "licence",
    "known_limitations",
)
"""Shown as "Not documented" when empty: a reader should see that nobody wrote them, above
all for the licence and the known limitations."""


# -- the sheet ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SheetSections:
    """What people write about a dataset. Text fields hold a string (a paragraph) or a list
    of strings (bullets); empty means not documented."""

    motivation: str | list[str] = ""
    composition: str | list[str] = ""
    collection_process: str | list[str] = ""
    preprocessing: str | list[str] = ""
    labeling: str | list[str] = ""
    uses: str | list[str] = ""
    distribution: str | list[str] = ""
    licence: str | list[str] = ""
    maintenance: str | list[str] = ""
    known_limitations: str | list[str] = ""
    owners: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    extra: dict[str, str | list[str]] = field(default_factory=dict)
    origin: str = ""
    """Where the YAML came from (a path, ``datasheet.yaml in the dataset's files``), or
    empty."""


@dataclass(frozen=True)
class ColumnSummary:
    """One column of a tabular version: its schema entry joined with its profile (profile
    values are None when the version has no profile)."""

    name: str
    type: str
    nullable: bool = True
    nulls: int | None = None
    null_fraction: float | None = None
    distinct: int | None = None
    distinct_approximate: bool = False
    min: Any = None
    """Numbers for numeric columns, ISO text for temporal ones, None otherwise."""
    max: Any = None
    mean: float | None = None
    top: list[tuple[str, int]] = field(default_factory=list)
    """Up to :data:`TOP_VALUES` most frequent values with their counts (text and booleans)."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int


@dataclass(frozen=True)
class VersionEntry:
    """One version in the dataset's history; ``current`` marks the one the sheet is about."""

    ref: str
    version: int
    kind: str
    created_ms: int
    created_by: str
    message: str
    row_count: int | None
    file_count: int
    total_size: int
    current: bool = False


@dataclass(frozen=True)
class ValidationEntry:
    """One ``dataset.validated`` event: a suite run on this version, and its outcome."""

    time_ms: int
    actor: str
    suite: str
    success: bool
    evaluated: int | None = None
    passed: int | None = None
    failed: int | None = None
    warnings: int | None = None


@dataclass(frozen=True)
class RunEntry:
    """A run that read this version (``relation`` says how lineage recorded it)."""

    run_id: str
    relation: str
    run_name: str = ""
    status: str = ""
    start_ms: int = 0
    user: str = ""


@dataclass(frozen=True)
class ModelEntry:
    """A model version registered from a run that read this version."""

    name: str
    version: str
    run_id: str
    aliases: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Datasheet:
    """Everything a sheet shows, collected once so every format renders the same facts."""

    name: str
    version: int
    kind: str
    digest: str
    created_ms: int
    created_by: str
    message: str = ""
    file_count: int = 0
    total_size: int = 0
    row_count: int | None = None
    user: SheetSections = field(default_factory=SheetSections)
    columns: list[ColumnSummary] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)
    """The first :data:`MAX_FILES` files, by path (file datasets)."""
    files_omitted: int = 0
    versions: list[VersionEntry] = field(default_factory=list)
    """Newest first."""
    versions_omitted: int = 0
    validations: list[ValidationEntry] = field(default_factory=list)
    """Oldest first."""
    validations_truncated: bool = False
    """True when older validations were left out (more than :data:`MAX_VALIDATIONS` ran)."""
    runs: list[RunEntry] = field(default_factory=list)
    models: list[ModelEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Why a section is emptier than it should be (no profile, a deleted run)."""
    generated_ms: int = 0

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


# -- the user-written YAML ---------------------------------------------------------------------
def parse_sheet_yaml(source: UserYaml) -> SheetSections:
    """Read and check a sheet's YAML (a path or a parsed mapping). Strict, because a misspelt
    ``known_limitation:`` silently dropped would publish a sheet claiming there are none: an
    unknown key (``license`` included: the field is ``licence``) or a wrongly typed field is
    InvalidInput naming it."""
    return SheetSections(
        **parse_user_yaml(
            source,
            what=_WHAT,
            text_fields=TEXT_FIELDS,
            list_fields=LIST_FIELDS,
            renamed=RENAMED,
        )
    )


def _embedded_sheet(workspace: Workspace, version: DatasetVersion) -> SheetSections | None:
    """The ``datasheet.yaml`` at the root of a file dataset's version, read as one blob
    through the manifest: the rest of the version (possibly gigabytes) is never read."""
    if version.kind != DatasetKind.FILES:
        return None
    found = next(
        (e for e in workspace.data.manifest(version).entries if e.path == SHEET_FILE), None
    )
    if found is None:
        return None
    text = workspace.data.blobs.read_bytes(found.digest).decode("utf-8", errors="replace")
    return SheetSections(
        **parse_user_yaml_text(
            text,
            origin=f"{SHEET_FILE} in the dataset's files",
            what=_WHAT,
            text_fields=TEXT_FIELDS,
            list_fields=LIST_FIELDS,
            renamed=RENAMED,
        )
    )


# -- what the workspace knows ------------------------------------------------------------------
def _columns(version: DatasetVersion, profile: Mapping[str, Any] | None) -> list[ColumnSummary]:
    stats_of = (profile or {}).get("columns") or {}
    columns: list[ColumnSummary] = []
    for col in version.schema or []:
        stats = stats_of.get(col["name"]) or {}
        top = stats.get("top") or []
        mean = stats.get("mean")
        columns.append(
            ColumnSummary(
                name=str(col["name"]),
                type=str(col.get("type", "")),
                nullable=bool(col.get("nullable", True)),
                nulls=stats.get("nulls"),
                null_fraction=stats.get("null_fraction"),
                distinct=stats.get("distinct"),
                distinct_approximate=bool(stats.get("distinct_approximate", False)),
                min=stats.get("min"),
                max=stats.get("max"),
                mean=float(mean) if isinstance(mean, int | float) else None,
                top=[(str(t["value"]), int(t["count"])) for t in top[:TOP_VALUES]],
            )
        )
    return columns


def _versions(workspace: Workspace, version: DatasetVersion) -> tuple[list[VersionEntry], int]:
    every = workspace.data.versions(version.name)
    return [
        VersionEntry(
            ref=v.ref,
            version=v.version,
            kind=v.kind,
            created_ms=v.created_ms,
            created_by=v.created_by,
            message=v.message,
            row_count=v.row_count,
            file_count=v.file_count,
            total_size=v.total_size,
            current=v.version == version.version,
        )
        for v in every[:MAX_VERSIONS]
    ], max(len(every) - MAX_VERSIONS, 0)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _validations(
    workspace: Workspace, version: DatasetVersion
) -> tuple[list[ValidationEntry], bool]:
    """The newest :data:`MAX_VALIDATIONS` validations, oldest first; one more is asked for
    only to know whether older ones were left out."""
    events = workspace.events.list(
        object_kind="dataset_version",
        object_id=version.ref,
        action="dataset.validated",
        limit=MAX_VALIDATIONS + 1,
        newest_first=True,
    )
    entries = [
        ValidationEntry(
            time_ms=e.time_ms,
            actor=e.actor,
            suite=str(e.details.get("suite", "")),
            success=bool(e.details.get("success")),
            evaluated=_int_or_none(e.details.get("evaluated")),
            passed=_int_or_none(e.details.get("passed")),
            failed=_int_or_none(e.details.get("failed")),
            warnings=_int_or_none(e.details.get("warnings")),
        )
        for e in events[:MAX_VALIDATIONS]
    ]
    return entries[::-1], len(events) > MAX_VALIDATIONS


def _lineage(
    workspace: Workspace, version: DatasetVersion, notes: list[str]
) -> tuple[list[RunEntry], list[ModelEntry]]:
    """Runs linked straight from this version (read, trained on, ...) and model versions
    registered from those runs. Two hops only: what a model then served belongs on its card."""
    me = Ref("dataset_version", version.ref)
    edges = workspace.lineage.downstream(me, max_depth=2)
    relations: dict[str, list[str]] = {}
    for e in edges:
        if e.source == me and e.target.kind == "run":
            relations.setdefault(e.target.id, [])
            if e.relation not in relations[e.target.id]:
                relations[e.target.id].append(e.relation)
    runs: list[RunEntry] = []
    for run_id, how in relations.items():
        try:
            info = workspace.tracking.get_run(run_id).info
        except NotFound:
            notes.append(f"run {run_id} no longer exists")
            runs.append(RunEntry(run_id, ", ".join(how)))
            continue
        runs.append(
            RunEntry(
                run_id,
                ", ".join(how),
                run_name=info.run_name,
                status=str(info.status),
                start_ms=info.start_time,
                user=info.user_id,
            )
        )
    models: dict[str, ModelEntry] = {}
    for e in edges:
        if e.source.kind != "run" or e.source.id not in relations:
            continue
        if e.target.kind != "model_version" or e.target.id in models:
            continue
        name, _, number = e.target.id.rpartition("/")
        try:
            aliases = sorted(workspace.registry.get_model_version(name, number).aliases)
        except NotFound:
            notes.append(f"model version {e.target.id} no longer exists")
            aliases = []
        models[e.target.id] = ModelEntry(name, number, e.source.id, aliases)
    return runs, list(models.values())


def collect_datasheet(
    workspace: Workspace, ref: str | DatasetVersion, sheet_yaml: UserYaml = None
) -> Datasheet:
    """Gather every fact a sheet shows for ``ref`` (``NAME@VERSION``, ``NAME@latest`` or a
    manifest digest). ``sheet_yaml`` (a path or a mapping) gives the user-written sections;
    without it a file dataset's ``datasheet.yaml`` is used when present. Missing facts leave
    sections empty with a note saying why: a sheet for an old version is still worth
    reading."""
    data = workspace.data
    version = data.resolve(ref)
    notes: list[str] = []
    user = parse_sheet_yaml(sheet_yaml)
    if sheet_yaml is None:
        user = _embedded_sheet(workspace, version) or user

    columns: list[ColumnSummary] = []
    files: list[FileEntry] = []
    files_omitted = 0
    if version.kind == DatasetKind.TABLE:
        profile = data.profile(version)
        if profile is None:
            notes.append(f"{version.ref} has no stored profile; column statistics are missing")
        columns = _columns(version, profile)
    else:
        entries = data.manifest(version).entries
        files = [FileEntry(e.path, e.size) for e in entries[:MAX_FILES]]
        files_omitted = max(len(entries) - MAX_FILES, 0)

    versions, versions_omitted = _versions(workspace, version)
    validations, validations_truncated = _validations(workspace, version)
    runs, models = _lineage(workspace, version, notes)
    return Datasheet(
        name=version.name,
        version=version.version,
        kind=str(version.kind),
        digest=version.digest,
        created_ms=version.created_ms,
        created_by=version.created_by,
        message=version.message,
        file_count=version.file_count,
        total_size=version.total_size,
        row_count=version.row_count,
        user=user,
        columns=columns,
        files=files,
        files_omitted=files_omitted,
        versions=versions,
        versions_omitted=versions_omitted,
        validations=validations,
        validations_truncated=validations_truncated,
        runs=runs,
        models=models,
        notes=notes,
        generated_ms=time.time_ns() // 1_000_000,
    )


# -- rendering ---------------------------------------------------------------------------------
def _render(sheet: Datasheet, template: str, html: bool) -> str:
    sections = user_sections(sheet.user, _SECTION_TITLES, _ALWAYS_SHOWN)
    return render("loopline.data", template, html=html, sheet=sheet, sections=sections)


def render_markdown(sheet: Datasheet) -> str:
    """The sheet as GitHub-flavoured Markdown; user prose is kept as written (it may be
    Markdown), table cells are escaped."""
    return _render(sheet, "datasheet.md.j2", html=False)


def render_html(sheet: Datasheet) -> str:
    """The sheet as one self-contained HTML page (inline CSS, no scripts or external assets),
    every value escaped (column names and top values are whatever the data holds), so it can
    be mailed, attached or served as is."""
    return _render(sheet, "datasheet.html.j2", html=True)


def datasheet(
    ref: str,
    *,
    format: str = "md",
    sheet_yaml: UserYaml = None,
    workspace: Workspace | None = None,
) -> str:
    """The datasheet of dataset version ``ref`` (``transactions@3``, ``transactions@latest``)
    as Markdown (``format="md"``) or HTML (``"html"``), from the current workspace unless one
    is given. ``sheet_yaml`` is a YAML file's path or a mapping; without it a file dataset's
    own ``datasheet.yaml`` is used."""
    if format not in FORMATS:
        raise InvalidInput(f"datasheet format must be one of {', '.join(FORMATS)}, got {format!r}")
    if workspace is None:
        from loopline.api import current_workspace

        workspace = current_workspace()
    collected = collect_datasheet(workspace, ref, sheet_yaml)
    return render_html(collected) if format == "html" else render_markdown(collected)
