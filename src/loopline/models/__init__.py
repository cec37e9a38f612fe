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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.errors import AlreadyExists
from loopline.models.card import card
from loopline.models.loading import LoadedModel, download_model, load_model, read_mlmodel
from loopline.registry.entities import AliasMove, ModelVersion, PromotionRequest
from loopline.registry.policy import PromotionPolicy

__all__ = [
    "LoadedModel",
    "ModelInfo",
    "PromotionPolicy",
    "PromotionRequest",
    "approve",
    "card",
    "download",
    "load",
    "log_model",
    "promote",
    "read_mlmodel",
    "register",
    "reject",
    "requests",
    "rollback",
    "set_alias",
    "set_policy",
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
    signature: Any = None,
    registered_model_name: str | None = None,
    flavor: str | None = None,
    serialization_format: str | None = None,
    pip_requirements: Sequence[str] | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Save ``model`` as an MLflow model under the run's artifacts at ``name``; register it too
    when ``registered_model_name`` is given.

    The flavor (``sklearn``, ``xgboost``, ``lightgbm``, ``onnx``, or ``python_function`` for
    any object with ``predict``) follows the model's class unless ``flavor`` names one;
    ``serialization_format="skops"`` stores scikit-learn models in the safer skops format (see
    docs/flavors.md). ``signature`` (MLflow's ``{"inputs", "outputs", "params"}`` dict or an
    ``mlflow.models.ModelSignature``) overrides the one inferred from ``input_example``;
    ``pip_requirements`` replaces the pinned ``requirements.txt`` lines."""
    from loopline.models.mlmodel import save_model
    from loopline.tracking import fluent

    run = run_id or fluent._run_id(None)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(
            model,
            Path(tmp) / name,
            flavor=flavor,
            serialization_format=serialization_format,
            input_example=input_example,
            signature=signature,
            pip_requirements=pip_requirements,
            run_id=run,
            artifact_path=name,
        )
        fluent.log_artifacts(Path(tmp) / name, name, run_id=run)
    info = ModelInfo(f"runs:/{run}/{name}", run, name)
    if registered_model_name:
        register(info.model_uri, registered_model_name)
    return info


def register(
    model_uri: str, name: str, *, version_label: str | None = None, description: str = ""
) -> ModelVersion:
    """Register the model at ``model_uri`` as the next version of ``name`` (created if new).
    The version pins the model's files, snapshots its run's provenance (code commit,
    environment, metrics, params, datasets) and gets a semantic ``version_label``: major when
    the signature changed, minor for new files, patch for the same files (pass one to
    override)."""
    from loopline.api import current_workspace

    registry = current_workspace().registry
    try:
        registry.create_registered_model(name)
    except AlreadyExists:
        pass
    match = _RUN_OF.match(model_uri)
    return registry.create_model_version(
        name,
        model_uri,
        run_id=match.group(1) if match else None,
        description=description or None,
        version_label=version_label,
    )


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
) -> AliasMove | PromotionRequest:
    """Move ``alias`` to ``version``, recorded in the alias history with who, when and why.
    When a promotion policy governs the alias (see :func:`set_policy`), its checks run first
    and, if it needs approval, a pending :class:`PromotionRequest` is returned instead:
    :func:`approve` by other users completes it. ``expected_current`` (the version the alias
    pointed at when you decided, or None for unset) makes it a compare-and-set: Conflict if
    another promotion moved it meanwhile."""
    from loopline.api import current_workspace

    return current_workspace().registry.promote(
        name, version, alias, reason=reason, expected_current=expected_current
    )


def rollback(name: str, alias: str, *, reason: str = "") -> AliasMove:
    """Move ``alias`` back to the version it pointed at before its last move."""
    from loopline.api import current_workspace

    return current_workspace().registry.rollback(name, alias, reason=reason)


def approve(request_id: int | str, *, comment: str = "") -> PromotionRequest:
    """Approve a pending promotion request as the current user; the approval that completes
    the policy moves the alias (the request comes back APPLIED)."""
    from loopline.api import current_workspace

    return current_workspace().registry.approve(request_id, comment=comment)


def reject(request_id: int | str, *, comment: str = "") -> PromotionRequest:
    """Refuse a pending promotion request (the requester may withdraw their own)."""
    from loopline.api import current_workspace

    return current_workspace().registry.reject(request_id, comment=comment)


def requests(
    name: str | None = None, *, version: int | str | None = None, state: str | None = None
) -> list[PromotionRequest]:
    """Promotion requests, oldest first (``state``: PENDING, APPLIED, REJECTED or STALE)."""
    from loopline.api import current_workspace

    return current_workspace().registry.list_promotion_requests(name, version=version, state=state)


def set_policy(
    name: str,
    alias: str,
    *,
    approvals: int = 1,
    approver_role: str = "editor",
    allow_self_approval: bool = False,
    checks: list[dict[str, Any]] | None = None,
) -> PromotionPolicy:
    """Govern ``alias`` of ``name``: moving it then needs ``approvals`` distinct approvers
    holding ``approver_role`` (checked when the server runs with auth) and every check
    (``{"metric": "auc", "min": 0.8}``, optionally ``"evaluation": "holdout"``) to pass.
    ``approvals=0`` keeps only the checks."""
    from loopline.api import current_workspace

    return current_workspace().registry.set_promotion_policy(
        name,
        {
            "alias": alias,
            "approvals": approvals,
            "approver_role": approver_role,
            "allow_self_approval": allow_self_approval,
            "checks": checks or [],
        },
    )
