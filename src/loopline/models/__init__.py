"""Models in the MLflow ``MLmodel`` directory format: log, register, alias and load them.

    info = ll.models.log_model(model, "model", input_example=X[:5])    # inside a run
    version = ll.models.register(info.model_uri, "fraud")
    ll.models.set_alias("fraud", "champion", version.version)
    ll.models.load("models:/fraud@champion").predict(X)

Models written here load with ``mlflow.pyfunc.load_model`` and models MLflow wrote (through
``loopline server``) load here; the mlflow package is never needed at run time.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.errors import AlreadyExists
from loopline.models.loading import LoadedModel, download_model, load_model, read_mlmodel
from loopline.registry.entities import AliasMove, ModelVersion

__all__ = [
    "LoadedModel",
    "ModelInfo",
    "download",
    "load",
    "log_model",
    "promote",
    "read_mlmodel",
    "register",
    "rollback",
    "set_alias",
]

load = load_model
download = download_model
_RUN_OF = re.compile(r"^runs:/([0-9a-f]{32})(?:/|$)")


@dataclass(frozen=True)
class ModelInfo:
    model_uri: str
    """``runs:/<run_id>/<name>``: what :func:`register` and :func:`load` take."""
    run_id: str
    artifact_path: str


def log_model(
    model: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    registered_model_name: str | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Save ``model`` (anything picklable with ``predict``; scikit-learn, LightGBM, XGBoost) as
    an MLflow model under the run's artifacts at ``name``; register it too when
    ``registered_model_name`` is given. The signature is inferred from ``input_example``."""
    from loopline.models.mlmodel import save_sklearn_model
    from loopline.tracking import fluent

    run = run_id or fluent._run_id(None)
    output = None
    if input_example is not None:
        try:
            output = model.predict(input_example)
        except Exception:  # an example the model cannot score still documents the input
            output = None
    with tempfile.TemporaryDirectory() as tmp:
        save_sklearn_model(
            model,
            Path(tmp) / name,
            input_example=input_example,
            output_example=output,
            run_id=run,
            artifact_path=name,
        )
        fluent.log_artifacts(Path(tmp) / name, name, run_id=run)
    info = ModelInfo(f"runs:/{run}/{name}", run, name)
    if registered_model_name:
        register(info.model_uri, registered_model_name)
    return info


def register(model_uri: str, name: str) -> ModelVersion:
    """Register the model at ``model_uri`` as the next version of ``name`` (created if new)."""
    from loopline.api import current_workspace

    registry = current_workspace().registry
    try:
        registry.create_registered_model(name)
    except AlreadyExists:
        pass
    match = _RUN_OF.match(model_uri)
    return registry.create_model_version(name, model_uri, run_id=match.group(1) if match else None)


def set_alias(name: str, alias: str, version: int | str) -> None:
    """Point ``alias`` (``champion``, ``challenger``, any name) at ``version`` of ``name``."""
    from loopline.api import current_workspace

    current_workspace().registry.set_alias(name, alias, version)


def promote(
    name: str,
    version: int | str,
    alias: str,
    *,
    reason: str = "",
    expected_current: int | str | None = "any",
) -> AliasMove:
    """Move ``alias`` to ``version``, recorded in the alias history with who, when and why.
    ``expected_current`` (the version the alias pointed at when you decided, or None for
    unset) makes it a compare-and-set: Conflict if another promotion moved it meanwhile."""
    from loopline.api import current_workspace

    return current_workspace().registry.promote(
        name, version, alias, reason=reason, expected_current=expected_current
    )


def rollback(name: str, alias: str, *, reason: str = "") -> AliasMove:
    """Move ``alias`` back to the version it pointed at before its last move."""
    from loopline.api import current_workspace

    return current_workspace().registry.rollback(name, alias, reason=reason)
