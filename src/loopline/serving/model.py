"""The model a server serves: loaded once, with the name and version clients address it by.

A server process serves one model loaded into memory before the first request, so readiness
is simply "the process answers". The signature decides how requests become model input: a
model trained on a DataFrame takes named columns, a model trained on an array takes one tensor.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput, NotFound
from loopline.models.loading import LoadedModel, download_model, load_model_dir
from loopline.workspace import Workspace

__all__ = ["MODEL_URI_SCHEMES", "ModelFiles", "ServedModel", "load_served_model", "locate_model"]

MODEL_URI_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
"""Sources read from a workspace; anything else must be a model directory."""


def _schema(raw: Any) -> list[dict[str, Any]]:
    spec = json.loads(raw) if isinstance(raw, str) else raw
    return spec if isinstance(spec, list) else []


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and how clients name it."""

    name: str
    version: str | None
    """The registry version number, when known; OIP responses carry it as ``model_version``."""
    loaded: LoadedModel

    @property
    def platform(self) -> str:
        """The framework flavor (``sklearn``, ...), as OIP model metadata reports it."""
        flavors = self.loaded.metadata.get("flavors") or {}
        return next((f for f in flavors if f != "python_function"), "python_function")

    @property
    def inputs(self) -> list[dict[str, Any]]:
        """The signature's input specs (MLflow's JSON shapes); empty when it has none."""
        return _schema(self.loaded.signature.get("inputs"))

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return _schema(self.loaded.signature.get("outputs"))

    @property
    def columns(self) -> list[str]:
        """Named input columns of a DataFrame signature; empty for tensor or no signature."""
        return [str(c["name"]) for c in self.inputs if c.get("type") != "tensor" and c.get("name")]

    def integral_columns(self, frame: Any) -> Any:
        """``frame`` with whole-number float columns made integers where the signature wants
        integers. JSON has one kind of number and clients write ``30.0`` for 30 (a 2-D tensor,
        a row list built by numpy); MLflow's scoring server casts to the schema likewise. A
        real fraction stays a float, for enforcement to refuse naming the column."""
        import numpy as np

        for spec in self.inputs:
            name = spec.get("name")
            if spec.get("type") not in ("long", "integer") or name not in frame.columns:
                continue
            values = frame[name]
            if (
                values.dtype.kind == "f"
                and bool(np.isfinite(values).all())
                and bool((values == values.round()).all())
            ):
                frame[name] = values.astype("int64")
        return frame

    def predict(self, data: Any) -> Any:
        """Predict after signature enforcement. Columns the model does not take are dropped, as
        MLflow's scoring server drops them (clients often send an id along); a missing or
        mistyped column is an InvalidInput naming it."""
        return self.loaded.predict(data)


@dataclass(frozen=True)
class ModelFiles:
    """Where a model's files are, with the name and version its source implies."""

    directory: Path
    name: str
    version: str | None = None


def locate_model(
    source: str | Path, scratch: Path, workspace: Workspace | None = None
) -> ModelFiles:
    """A model directory is used in place. A model URI's files are copied (each verified) into
    ``scratch``/model; a registered version is addressed by number from then on, so an alias
    moving meanwhile cannot mix two versions' files."""
    text = str(source)
    path = Path(source)
    if path.is_dir():
        return ModelFiles(path, path.resolve().name)
    if not text.startswith(MODEL_URI_SCHEMES):
        raise NotFound(
            f"{text!r} is neither a model directory nor a model URI (models:/NAME@ALIAS, "
            "models:/NAME/VERSION, runs:/RUN_ID/PATH)"
        )
    from loopline.api import current_workspace
    from loopline.models.refs import parse_model_ref, resolve_version

    ws = workspace or current_workspace()
    uri, name, version = text, text.rstrip("/").rsplit("/", 1)[-1], None
    if text.startswith("models:/") and not text.startswith("models:/m-"):
        registered = resolve_version(ws.registry, parse_model_ref(text))
        uri = f"models:/{registered.name}/{registered.version}"
        name, version = registered.name, str(registered.version)
    return ModelFiles(download_model(uri, scratch / "model", ws), name, version)


def load_served_model(
    source: str | Path,
    name: str | None = None,
    version: str | int | None = None,
    workspace: Workspace | None = None,
) -> ServedModel:
    """Load the model in directory ``source`` or at model URI ``source`` (see
    :func:`locate_model`); ``name`` and ``version`` override what the source implies. A URI's
    files are removed once loaded: the model lives in memory."""
    with tempfile.TemporaryDirectory(prefix="loopline-serve-") as scratch:
        files = locate_model(source, Path(scratch), workspace)
        loaded = load_model_dir(files.directory)
    return ServedModel(name or files.name, _version(version) or files.version, loaded)


def _version(version: str | int | None) -> str | None:
    if version is None or str(version) == "":
        return None
    if "/" in str(version):
        raise InvalidInput(f"model version {version!r} must not contain '/'")
    return str(version)
