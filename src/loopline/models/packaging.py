"""Container build contexts for registered model versions (``loopline models build``).

A build context is a directory ``docker build`` takes as it is: the model's files (copied out
of the blob store, each verified against its digest), a ``requirements.txt`` that pins every
package the server needs, a ``Dockerfile`` that installs them on a slim Python base and runs
``loopline serve`` as a non-root user, a ``.dockerignore`` and a ``README.md`` saying what is
inside. Nothing here needs Docker: the context is plain files, so it can be checked (and is,
in the tests) by installing its requirements into a fresh virtual environment and running its
entry point.

Pins come from the environment the model was trained in when Loopline captured it (the run's
``loopline/requirements.txt``), so the container runs the library versions the model was
pickled with; packages the capture lacks are pinned to this machine's installed versions. The
README says which source each came from.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from loopline._version import __version__
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.registry.entities import ModelVersion
from loopline.workspace import Workspace

__all__ = [
    "BuildContext",
    "ModelRef",
    "Pins",
    "build_context",
    "image_name",
    "parse_model_ref",
    "pin_requirements",
    "resolve_version",
]

CAPTURED_REQUIREMENTS = "loopline/requirements.txt"
"""Where :mod:`loopline.tracking.capture` stores a run's installed packages."""
MODEL_DIR_IN_IMAGE = "/opt/model"
# The MLflow client is never needed to serve: Loopline reads MLmodel itself. MLflow-written
# models list it in their requirements; installing it would add hundreds of MB for nothing.
_NOT_NEEDED_TO_SERVE = frozenset({"mlflow", "mlflow-skinny"})

_REF = re.compile(r"^(?:models:/)?(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")
_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    r"(?:\[(?P<extras>[^\]]*)\])?\s*(?P<spec>[^;]*?)\s*(?:;\s*(?P<marker>.*?))?\s*$"
)
_EXTRA_MARKER = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")
_PINNED = re.compile(r"^==\s*(?P<version>[^,\s]+)$")
_T = TypeVar("_T")


@dataclass(frozen=True)
class ModelRef:
    """A registered model version named by alias or number."""

    name: str
    alias: str | None = None
    version: int | None = None


def parse_model_ref(ref: str) -> ModelRef:
    """``NAME@ALIAS``, ``NAME/VERSION``, ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``."""
    match = _REF.match(ref.strip())
    if not match:
        raise InvalidInput(
            f"model {ref!r}: name a registered version as NAME@ALIAS, NAME/VERSION, "
            "models:/NAME@ALIAS or models:/NAME/VERSION (e.g. fraud@champion)"
        )
    version = match["version"]
    return ModelRef(match["name"], match["alias"], int(version) if version else None)


def resolve_version(ws: Workspace, ref: str | ModelRef) -> ModelVersion:
    """The version ``ref`` names now. Callers then address it by number, so an alias that
    moves meanwhile cannot make them mix files of two versions."""
    parsed = parse_model_ref(ref) if isinstance(ref, str) else ref
    if parsed.alias is not None:
        return ws.registry.get_version_by_alias(parsed.name, parsed.alias)
    return ws.registry.get_model_version(parsed.name, parsed.version or 0)


# -- requirements ------------------------------------------------------------------------------


def _normalize(name: str) -> str:
    """PEP 503 name: ``Scikit_Learn`` and ``scikit-learn`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _read_pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a pip freeze-like file, by normalized name."""
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, sep, version = line.partition("==")
        if sep and name.strip() and version.strip():
            pins[_normalize(name.strip())] = version.strip()
    return pins


@dataclass
class _Need:
    name: str
    extras: set[str] = field(default_factory=set)
    markers: set[str | None] = field(default_factory=set)
    spec: str = ""
    model_pin: str | None = None


@dataclass(frozen=True)
class Pins:
    """The pinned requirement lines and where each version came from."""

    lines: list[str]
    sources: dict[str, str]
    """Package -> ``model`` (the model's own requirements.txt), ``captured`` (the run's
    captured environment), ``installed`` (this machine), ``conditional`` (its environment
    marker did not hold here, so nothing was installed to pin) or ``unpinned`` (known
    nowhere)."""
    dropped: list[str] = field(default_factory=list)
    """Model requirements left out because serving does not need them (the MLflow client)."""

    def by_source(self, source: str) -> list[str]:
        return sorted(name for name, where in self.sources.items() if where == source)


def _parse(line: str) -> tuple[str, set[str], str, str | None] | None:
    match = _REQUIREMENT.match(line.strip())
    if not match or match["spec"].startswith("@"):  # a direct URL: nothing to pin
        return None
    extras = {e.strip() for e in (match["extras"] or "").split(",") if e.strip()}
    return match["name"], extras, match["spec"].replace(" ", ""), match["marker"] or None


def _installed() -> dict[str, importlib.metadata.Distribution]:
    found: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            found.setdefault(_normalize(name), dist)
    return found


def pin_requirements(
    model_requirements: str,
    captured: Mapping[str, str] | None,
    roots: Iterable[str] = ("loopline",),
) -> Pins:
    """Pin the model's requirements, ``roots`` and everything they depend on.

    Dependencies are walked through this machine's installed package metadata (extras only
    when asked for; other environment markers are kept on the line, for pip to judge on the
    target). Each version is the model's own pin if it has one, else the captured one, else
    the installed one; a package none of them knows stays as its requirement said."""
    installed = _installed()
    captured = {_normalize(k): v for k, v in (captured or {}).items()}
    needs: dict[str, _Need] = {}
    dropped: list[str] = []
    queue: list[tuple[str, set[str], str, str | None]] = []
    for raw in model_requirements.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue  # comments and pip options (-r, --index-url) are not packages
        parsed = _parse(line)
        if parsed is None:
            raise InvalidInput(f"model requirement {line!r} cannot be pinned; fix the model's")
        if _normalize(parsed[0]) in _NOT_NEEDED_TO_SERVE:
            dropped.append(line)
            continue
        queue.append(parsed)
    queue.extend((root, set(), "", None) for root in roots)
    model_pins = {
        _normalize(name): m["version"]
        for name, _, spec, _ in queue
        if (m := _PINNED.match(spec)) is not None
    }
    while queue:
        name, extras, spec, marker = queue.pop(0)
        key = _normalize(name)
        need = needs.get(key)
        fresh = need is None
        if need is None:
            need = needs[key] = _Need(name, spec=spec, model_pin=model_pins.get(key))
        new_extras = extras - need.extras
        need.extras |= extras
        need.markers.add(marker)
        dist = installed.get(key)
        if dist is None or not (fresh or new_extras):
            continue
        # Children of a conditional requirement are walked as if unconditional: they were
        # installed here because the condition held, and the target is Linux like this is.
        for requirement in dist.requires or []:
            parsed = _parse(requirement)
            if parsed is None:
                continue
            child, child_extras, child_spec, child_marker = parsed
            wanted = _EXTRA_MARKER.findall(child_marker or "")
            if wanted:
                if not set(wanted) & need.extras:
                    continue
                child_marker = None  # the extra was asked for; pip need not see it again
            queue.append((child, child_extras, child_spec, child_marker))

    lines: list[str] = []
    sources: dict[str, str] = {}
    for key in sorted(needs):
        need = needs[key]
        display = installed[key].metadata["Name"] if key in installed else need.name
        extras = f"[{','.join(sorted(need.extras))}]" if need.extras else ""
        if need.model_pin:
            version, source = need.model_pin, "model"
        elif key in captured:
            version, source = captured[key], "captured"
        elif key in installed:
            version, source = installed[key].version, "installed"
        elif None in need.markers:
            version, source = None, "unpinned"
        else:  # not installed here because its condition did not hold: pip judges it there
            version, source = None, "conditional"
        line = f"{display}{extras}" + (f"=={version}" if version else need.spec)
        conditions = sorted(m for m in need.markers if m is not None)
        if None not in need.markers and len(conditions) == 1:
            line += f"; {conditions[0]}"
        elif None not in need.markers:  # needed where any of its parents' conditions holds
            line += "; " + " or ".join(f"({m})" for m in conditions)
        lines.append(line)
        sources[display] = source
    return Pins(lines, sources, dropped)


def _captured_requirements(ws: Workspace, run_id: str | None) -> dict[str, str] | None:
    """The run's captured ``name==version`` pins, or None when it has none (a model
    registered without a run, a run logged by the MLflow client, a purged run)."""
    if not run_id:
        return None
    with tempfile.TemporaryDirectory(prefix="loopline-capture-") as tmp:
        try:
            path = ws.tracking.download_artifacts(run_id, CAPTURED_REQUIREMENTS, tmp)
        except NotFound:
            return None
        return _read_pins(Path(path).read_text(encoding="utf-8", errors="replace")) or None


# -- the context's files ---------------------------------------------------------------------


@dataclass(frozen=True)
class BuildContext:
    """A written build context: where each part is and what it holds."""

    root: Path
    dockerfile: Path
    requirements: Path
    model_dir: Path
    readme: Path
    dockerignore: Path
    wheels_dir: Path
    name: str
    version: int
    alias: str | None
    manifest_digest: str
    requirements_source: str
    """``captured`` when the source run's captured environment supplied the pins, else
    ``installed``."""
    entrypoint: list[str]
    image_tag: str


def image_name(model_name: str) -> str:
    """A Docker repository name for the model (lowercase, ``[a-z0-9._-]``)."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", model_name.lower()).strip("-._")
    return f"loopline-{cleaned or 'model'}"


def _manifest(model_dir: Path) -> tuple[str, list[tuple[str, int, str]]]:
    """The manifest digest of ``model_dir``, computed as the blob store computes it, so it
    equals the registry's ``files_digest`` for the same files; and ``(path, size, digest)``."""
    from loopline.blobs.cas import BlobStore, Manifest, ManifestEntry, hash_bytes

    entries = []
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        entries.append(
            ManifestEntry(
                path=path.relative_to(model_dir).as_posix(),
                digest=BlobStore.hash_file(path),
                size=path.stat().st_size,
                executable=bool(path.stat().st_mode & stat.S_IXUSR),
            )
        )
    entries.sort(key=lambda e: e.path)
    digest = hash_bytes(Manifest(tuple(entries)).to_bytes())
    return digest, [(e.path, e.size, e.digest) for e in entries]


def _dockerfile(
    base_image: str, port: int, entrypoint: list[str], version: ModelVersion, alias: str | None
) -> str:
    quoted = ", ".join(f'"{part}"' for part in entrypoint)
    label_alias = f"@{alias} " if alias else ""
    health = (
        "import urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{port}/v2/health/ready', timeout=4)"
    )
    return f"""\
# Built by `loopline models build` for {version.name} {label_alias}(version {version.version}).
# docker build -t {image_name(version.name)}:{version.version} .
FROM {base_image}

# No .pyc files or pip cache in the image; logs reach `docker logs` at once.
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The server runs as this unprivileged user, never as root.
RUN groupadd --system --gid 10001 loopline \\
 && useradd --system --uid 10001 --gid loopline --create-home --home-dir /home/loopline loopline

# Dependencies first: this layer is reused while only the model changes.
COPY requirements.txt /opt/requirements.txt
COPY wheels/ /opt/wheels/
RUN pip install --find-links /opt/wheels -r /opt/requirements.txt

# Owned by root and read-only to the server: a compromised process cannot alter the model.
COPY model/ {MODEL_DIR_IN_IMAGE}/

USER loopline
WORKDIR /home/loopline
EXPOSE {port}
# The slim image has no curl: Python's urllib asks the readiness route.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \\
  CMD ["python", "-c", "{health}"]
ENTRYPOINT [{quoted}]
"""


_DOCKERIGNORE = """\
# Send the builder only what the Dockerfile copies.
*
!requirements.txt
!model
!wheels
"""

_WHEELS_NOTE = """\
Wheels placed here are offered to pip next to the package index while the image builds
(`pip install --find-links /opt/wheels`). Put a wheel of loopline here when the version
pinned in requirements.txt is not on your index (a development build, say):

    pip wheel --no-deps /path/to/loopline -w wheels/
"""


def _readme(
    version: ModelVersion,
    alias: str | None,
    digest: str,
    files: list[tuple[str, int, str]],
    pins: Pins,
    run_id: str | None,
    captured: bool,
    base_image: str,
    port: int,
    model_python: str | None,
    entrypoint: list[str],
    example_payload: dict[str, object],
) -> str:
    tag = f"{image_name(version.name)}:{version.version}"
    name = version.name
    example = json.dumps(example_payload, separators=(",", ":")).replace("'", "'\\''")
    by_alias = f" (alias `{alias}`)" if alias else ""
    label = f", label `{version.version_label}`" if version.version_label else ""
    pinned = version.files_digest
    pin_note = (
        "the same digest the registry pinned at registration"
        if pinned == digest
        else f"the registry pinned `{pinned}`"
        if pinned
        else "the registry pinned no manifest for this version"
    )
    file_rows = "\n".join(f"| `{path}` | {size} | `{d[:16]}…` |" for path, size, d in files)
    if captured:
        source = (
            f"the environment captured when run `{run_id}` trained the model "
            f"(its `{CAPTURED_REQUIREMENTS}` artifact)"
        )
    elif run_id:
        source = (
            f"the versions installed where this context was built: run `{run_id}` has no "
            f"captured `{CAPTURED_REQUIREMENTS}`"
        )
    else:
        source = "the versions installed where this context was built: the version has no run"
    counts = []
    for what, key in (
        ("from the model's own requirements.txt", "model"),
        ("from the captured environment", "captured"),
        ("from this machine's installed packages", "installed"),
    ):
        names = pins.by_source(key)
        if names:
            shown = ", ".join(names) if key != "captured" or len(names) <= 8 else ""
            counts.append(f"- {len(names)} {what}" + (f": {shown}" if shown else ""))
    conditional = pins.by_source("conditional")
    if conditional:
        counts.append(
            f"- {len(conditional)} unpinned because their marker did not hold here (pip installs "
            f"them only where it holds): {', '.join(conditional)}"
        )
    unpinned = pins.by_source("unpinned")
    if unpinned:
        counts.append(f"- {len(unpinned)} left unpinned (known nowhere): {', '.join(unpinned)}")
    if pins.dropped:
        counts.append(f"- left out (serving does not need them): {', '.join(sorted(pins.dropped))}")
    python_note = ""
    base_tag = base_image.rpartition(":")[2]
    if model_python:
        wanted = ".".join(model_python.split(".")[:2])
        python_note = f"The model was saved with Python {model_python}."
        if not base_tag.startswith(wanted):
            python_note += (
                f" The base image `{base_image}` may run another Python: pass "
                f"`--base-image python:{wanted}-slim` if the pins do not install on it."
            )
    return f"""\
# {name}, version {version.version}: container build context

Written by `loopline models build` (Loopline {__version__}) for registered model `{name}`,
version {version.version}{by_alias}{label}. Model source: `{version.source}`.

## What is inside

| path | what |
|---|---|
| `Dockerfile` | `{base_image}`, pinned requirements, non-root user, health check, serve |
| `requirements.txt` | every package the server needs, pinned (`==`) |
| `model/` | the model's files, each verified against its digest when copied out |
| `wheels/` | wheels pip may use besides the index (put a loopline wheel here if needed) |
| `.dockerignore` | sends the builder only what the Dockerfile copies |

Manifest digest of `model/`: `{digest}`
(BLAKE3 over the canonical file list, as Loopline's blob store computes it; {pin_note}).

| file | bytes | BLAKE3 |
|---|---|---|
{file_rows}

## Requirements

Pinned from {source}:

{chr(10).join(counts)}

{python_note}

## Build and run

```bash
docker build -t {tag} .
docker run --rm -p {port}:{port} {tag}
```

The container listens on port {port} and runs, as user `loopline`:

```bash
{shlex.join(entrypoint)}
```

## Endpoints

This is Loopline's minimal serving endpoint: one model, no batching, no canary routing.

| route | what |
|---|---|
| `GET /v2/health/live`, `GET /v2/health/ready` | liveness; readiness (the HEALTHCHECK's) |
| `GET /v2` | server metadata |
| `GET /v2/models/{name}` | model metadata: inputs and outputs from the signature |
| `GET /v2/models/{name}/ready` | the model is loaded |
| `POST /v2/models/{name}/infer` | Open Inference Protocol v2 (KServe, Triton) JSON |
| `POST /invocations`, `GET /ping` | MLflow scoring protocol |

```bash
curl -s localhost:{port}/invocations -H 'content-type: application/json' \\
  -d '{example}'
```

## Trust

`model/` holds a pickle: loading it runs code from the file. The files are byte for byte the
ones registered as version {version.version} (each was checked against its digest), which
says where they came from, not that they are safe. Build and run images only of models from a
registry you trust.
"""


def _example_payload(model_dir: Path) -> dict[str, object]:
    """A one-row ``/invocations`` body from the model's saved input example, so the README's
    curl line works as written; a placeholder when the model has no example."""
    try:
        saved = json.loads((model_dir / "input_example.json").read_text())
    except (OSError, ValueError):
        return {"inputs": [["...one row of features..."]]}
    if isinstance(saved, dict) and "columns" in saved and saved.get("data"):
        return {"dataframe_split": {"columns": saved["columns"], "data": saved["data"][:1]}}
    if isinstance(saved, dict) and isinstance(saved.get("inputs"), list) and saved["inputs"]:
        return {"inputs": saved["inputs"][:1]}
    return {"inputs": [["...one row of features..."]]}


def _write_atomically(out: Path, overwrite: bool, write: Callable[[Path], _T]) -> _T:
    """Write the context into a temporary sibling of ``out``, then rename it into place, so a
    failure (a tampered blob, a full disk) leaves no half-written context behind."""
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"--out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise AlreadyExists(
            f"output directory {out} is not empty; pass --overwrite to replace it "
            "or choose another --out"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        result = write(staging)
        staging.chmod(0o755)  # mkdtemp makes it 0700; a context is meant to be shared
        if out.is_dir():
            old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
            os.replace(out, old)
            try:
                os.replace(staging, out)
            except OSError:
                os.replace(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def build_context(
    model: str,
    out_dir: str | os.PathLike[str],
    *,
    workspace: Workspace | None = None,
    base_image: str = "python:3.11-slim",
    port: int = 8080,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> BuildContext:
    """Write a container build context for the registered version ``model`` names
    (``NAME@ALIAS``, ``NAME/VERSION`` or a ``models:/`` URI) into ``out_dir``.

    ``out_dir`` must be missing or empty unless ``overwrite``; it appears complete or not at
    all. ``progress`` receives one line per step (the CLI prints them). Raises IntegrityError
    if a model file does not match its digest."""
    from loopline.api import current_workspace
    from loopline.models.loading import download_model, read_mlmodel

    if not 0 < port < 65536:
        raise InvalidInput(f"port must be between 1 and 65535, got {port}")
    say = progress or (lambda _line: None)
    ws = workspace or current_workspace()
    ref = parse_model_ref(model)
    version = resolve_version(ws, ref)
    named = f"{version.name}@{ref.alias} is version" if ref.alias else f"{version.name} version"
    trained = f", trained in run {version.run_id}" if version.run_id else ""
    say(f"{named} {version.version}{trained}")
    out = Path(out_dir).resolve()
    entrypoint = [
        "loopline",
        "serve",
        MODEL_DIR_IN_IMAGE,
        "--name",
        version.name,
        "--model-version",
        str(version.version),
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
    ]

    def write(root: Path) -> tuple[str, bool]:
        model_dir = download_model(f"models:/{version.name}/{version.version}", root / "model", ws)
        digest, files = _manifest(model_dir)
        say(f"copied {len(files)} model files, each verified (manifest {digest[:12]}…)")
        captured = _captured_requirements(ws, version.run_id)
        requirements = model_dir / "requirements.txt"
        own = requirements.read_text(encoding="utf-8") if requirements.is_file() else ""
        pins = pin_requirements(own, captured)
        where = f"run {version.run_id}'s captured environment" if captured else "this machine"
        say(f"pinned {len(pins.lines)} requirements from {where}")
        header = (
            f"# {version.name} version {version.version}: pinned by loopline models build from "
            + (f"run {version.run_id}'s captured environment" if captured else "installed versions")
            + "; see README.md\n"
        )
        (root / "requirements.txt").write_text(header + "\n".join(pins.lines) + "\n")
        (root / "wheels").mkdir()
        (root / "wheels" / "README.txt").write_text(_WHEELS_NOTE)
        (root / "Dockerfile").write_text(
            _dockerfile(base_image, port, entrypoint, version, ref.alias)
        )
        (root / ".dockerignore").write_text(_DOCKERIGNORE)
        pyfunc = read_mlmodel(model_dir)["flavors"].get("python_function") or {}
        (root / "README.md").write_text(
            _readme(
                version,
                ref.alias,
                digest,
                files,
                pins,
                version.run_id,
                captured is not None,
                base_image,
                port,
                pyfunc.get("python_version"),
                entrypoint,
                _example_payload(model_dir),
            )
        )
        return digest, captured is not None

    digest, captured = _write_atomically(out, overwrite, write)
    say(f"wrote {out}")
    return BuildContext(
        root=out,
        dockerfile=out / "Dockerfile",
        requirements=out / "requirements.txt",
        model_dir=out / "model",
        readme=out / "README.md",
        dockerignore=out / ".dockerignore",
        wheels_dir=out / "wheels",
        name=version.name,
        version=version.version,
        alias=ref.alias,
        manifest_digest=digest,
        requirements_source="captured" if captured else "installed",
        entrypoint=entrypoint,
        image_tag=f"{image_name(version.name)}:{version.version}",
    )
