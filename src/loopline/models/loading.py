"""Loading models in the MLflow ``MLmodel`` format, without the mlflow package.

A model URI names where the files are: ``models:/<name>@<alias>``, ``models:/<name>/<version>``,
``models:/<logged model id>`` or ``runs:/<run_id>/<path>``. The files are copied out of the blob
store (every byte verified against its digest on the way) into a directory, ``MLmodel`` is read
(JSON or YAML), and the flavor that the ``python_function`` section's ``loader_module`` names
loads it (:mod:`loopline.models.flavors`). A local model directory (or ``file://`` URI) loads
in place. Pickle-based flavors execute code from the model file when loaded: load only models
from a registry you trust.
"""

from __future__ import annotations

import re
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput, NotFound
from loopline.models.enforce import ExtraColumns, enforce_signature
from loopline.models.flavors import Predictor, flavor_for_loader
from loopline.registry.versioning import parse_mlmodel
from loopline.tracking.store import ArtifactRow, write_rows
from loopline.workspace import Workspace

__all__ = [
    "LoadedModel",
    "download_model",
    "load_model",
    "load_model_dir",
    "read_mlmodel",
    "source_files",
]

_RUNS_URI = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})(?:/(?P<path>.*))?$")
_MODELS_URI = re.compile(r"^models:/(?P<rest>.+)$")
_ARTIFACTS_URI = re.compile(
    r"^mlflow-artifacts:/(?P<exp>[^/]+)/(?:(?P<run>[0-9a-f]{32})|models/(?P<model>m-[0-9a-f]+))"
    r"/artifacts(?:/(?P<path>.*))?$"
)


def read_mlmodel(directory: str | Path) -> dict[str, Any]:
    """The parsed ``MLmodel`` file of a model directory (written as JSON by Loopline, as YAML
    by MLflow; JSON is YAML, so one YAML parser reads both)."""
    path = Path(directory) / "MLmodel"
    if not path.is_file():
        raise NotFound(f"{directory} is not a model directory: it has no MLmodel file")
    return parse_mlmodel(path.read_text(), str(path))


@dataclass
class LoadedModel:
    """A loaded ``python_function`` model: ``predict`` takes a DataFrame, an array or a dict of
    columns and returns what the flavor's MLflow pyfunc wrapper would (the estimator's
    predictions; for ONNX, outputs by name)."""

    predictor: Predictor
    metadata: dict[str, Any]
    path: Path
    signature: dict[str, Any] = field(default_factory=dict)
    flavor: str = "python_function"
    """The flavor that loaded it: ``sklearn``, ``xgboost``, ``lightgbm``, ``onnx`` or
    ``python_function``."""

    @property
    def model(self) -> Any:
        """The underlying model object (see :meth:`unwrap`)."""
        return self.predictor.get_raw_model()

    def predict(self, data: Any, *, extra_columns: ExtraColumns = "drop") -> Any:
        """Check ``data`` against the signature (see :mod:`loopline.models.enforce`), then
        predict. ``extra_columns="reject"`` refuses columns the model does not take."""
        return self.predictor.predict(enforce_signature(data, self.signature, extra_columns))

    def unwrap(self) -> Any:
        """The underlying model object: a scikit-learn estimator, an XGBoost or LightGBM
        booster or estimator, an onnxruntime session, or the object a python_function wraps."""
        return self.predictor.get_raw_model()


def load_model_dir(
    directory: str | Path, *, skops_trusted_types: Collection[str] = ()
) -> LoadedModel:
    """Load the model in a local ``MLmodel`` directory through the flavor its
    ``python_function`` ``loader_module`` names (see :mod:`loopline.models.flavors`)."""
    directory = Path(directory)
    doc = read_mlmodel(directory)
    pyfunc = doc["flavors"].get("python_function")
    if not isinstance(pyfunc, dict):
        raise InvalidInput(f"model at {directory} has no python_function flavor to load")
    flavor = flavor_for_loader(str(pyfunc.get("loader_module", "")), f"model at {directory}")
    flavor_conf = doc["flavors"].get(flavor.name) if flavor.name != "python_function" else {}
    predictor = flavor.load(
        directory, flavor_conf or {}, pyfunc, trusted_types=tuple(skops_trusted_types)
    )
    return LoadedModel(predictor, doc, directory, dict(doc.get("signature") or {}), flavor.name)


def _copy_run_files(ws: Workspace, run_id: str, path: str | None, dst: Path) -> Path:
    return ws.tracking.download_artifacts(run_id, path or None, dst)


def _copy_logged_model(ws: Workspace, model_id: str, path: str | None, dst: Path) -> Path:
    rows = ws.registry.model_artifact_files(model_id, path or None)
    if not rows:
        raise NotFound(f"logged model {model_id} has no files at {path or '(root)'!r}")
    prefix = f"{path.strip('/')}/" if path else ""
    return write_rows(
        rows,
        dst,
        lambda r, t: ws.blobs.get_to_path(r.digest, t),
        strip_prefix=prefix,
        what="model path",
    )


def source_files(ws: Workspace, source: str) -> list[ArtifactRow] | None:
    """The files of the model at ``source`` with paths relative to the model directory, or
    None when ``source`` is not stored in this workspace (an ``s3://`` path, say)."""
    if match := _RUNS_URI.match(source):
        run, path, kind = match["run"], match["path"], "run"
    elif match := _ARTIFACTS_URI.match(source):
        kind = "run" if match["run"] else "logged_model"
        run, path = match["run"] or match["model"], match["path"]
    elif (match := _MODELS_URI.match(source)) and match["rest"].startswith("m-"):
        run, path, kind = match["rest"].strip("/"), None, "logged_model"
    else:
        return None
    try:
        if kind == "run":
            rows = ws.tracking.artifact_files(run, path or None)
        else:
            rows = ws.registry.model_artifact_files(run, path or None)
    except NotFound:
        return None
    prefix = f"{path.strip('/')}/" if path else ""
    return [ArtifactRow(r.path[len(prefix) :], r.digest, r.size) for r in rows]


def _copy_source(ws: Workspace, source: str, dst: Path, depth: int = 0) -> Path:
    if depth > 5:
        raise InvalidInput(f"model URI {source!r} refers to itself")
    if match := _RUNS_URI.match(source):
        return _copy_run_files(ws, match["run"], match["path"], dst)
    if match := _ARTIFACTS_URI.match(source):
        if match["run"]:
            return _copy_run_files(ws, match["run"], match["path"], dst)
        return _copy_logged_model(ws, match["model"], match["path"], dst)
    if match := _MODELS_URI.match(source):
        rest = match["rest"].strip("/")
        if rest.startswith("m-") and "/" not in rest:
            return _copy_logged_model(ws, rest, None, dst)
        if "@" in rest:
            name, alias = rest.rsplit("@", 1)
            version = ws.registry.get_version_by_alias(name, alias)
        elif "/" in rest:
            name, number = rest.rsplit("/", 1)
            version = ws.registry.get_model_version(name, number)
        else:
            raise InvalidInput(
                f"model URI {source!r}: use models:/<name>@<alias>, models:/<name>/<version> "
                "or models:/<logged model id>"
            )
        if version.files_digest:
            # The files as they were at registration, each verified against its digest
            # (through a server, as they arrive).
            return ws.registry.download_version(version.name, version.version, dst)
        return _copy_source(ws, version.source, dst, depth + 1)
    raise InvalidInput(
        f"model URI {source!r} is not runs:/<run_id>/<path>, models:/<name>@<alias>, "
        "models:/<name>/<version> or models:/<logged model id>"
    )


def download_model(uri: str, dst: str | Path, workspace: Workspace | None = None) -> Path:
    """Copy the model ``uri`` names into ``dst`` (verified); returns the model directory."""
    from loopline.api import current_workspace

    ws = workspace or current_workspace()
    out = _copy_source(ws, uri, Path(dst))
    read_mlmodel(out)  # fail now, naming the URI, if it is not a model
    return out


def load_model(
    uri: str | Path,
    workspace: Workspace | None = None,
    *,
    skops_trusted_types: Collection[str] = (),
) -> LoadedModel:
    """Load the model ``uri`` names, ready to ``predict``: a model URI (``models:/...``,
    ``runs:/...``), a local model directory or a ``file://`` URI of one. Pickle-based models run
    code from their files while loading: load them only from a registry you trust.
    ``skops_trusted_types`` names extra types a skops-format model may hold."""
    local = _local_directory(uri)
    if local is not None:
        return load_model_dir(local, skops_trusted_types=skops_trusted_types)
    scratch = Path(tempfile.mkdtemp(prefix="loopline-model-"))
    model_dir = download_model(str(uri), scratch / "model", workspace)
    return load_model_dir(model_dir, skops_trusted_types=skops_trusted_types)


def _local_directory(uri: str | Path) -> Path | None:
    """The directory a path or ``file://`` URI names; None for other URIs. A ``file://`` URI or
    a Path that is not a directory is NotFound: the caller clearly meant a local model."""
    if isinstance(uri, Path):
        path = uri
    elif uri.startswith("file:"):
        parsed = urllib.parse.urlparse(uri)
        path = Path(urllib.request.url2pathname(parsed.path))
    elif "://" not in uri and ":/" not in uri and Path(uri).is_dir():
        path = Path(uri)
    else:
        return None
    if not path.is_dir():
        raise NotFound(f"no model directory at {path}")
    return path
