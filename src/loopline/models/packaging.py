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

import json
import os
import re
import shlex
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from loopline._version import __version__
from loopline.errors import AlreadyExists, InvalidInput
from loopline.models.refs import ModelRef, parse_model_ref, resolve_version
from loopline.models.requirements import (
    CAPTURED_REQUIREMENTS,
    Pins,
    captured_requirements,
    pin_requirements,
)
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

MODEL_DIR_IN_IMAGE = "/opt/model"
_T = TypeVar("_T")


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
    version = resolve_version(ws.registry, ref)
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
        captured = captured_requirements(ws, version.run_id)
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
