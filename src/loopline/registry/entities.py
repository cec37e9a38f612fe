"""Model registry records: registered models, their versions, and MLflow 3 logged models.

Field names follow MLflow's model registry protos (``creation_timestamp``,
``last_updated_timestamp``, ``current_stage``, ...), so the MLflow-compatible REST routes map
them without renaming. Versions are ``int`` here; the wire's string form is the adapter's job.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTIVE_STAGES",
    "AliasMove",
    "CheckResult",
    "LoggedModel",
    "LoggedModelStatus",
    "ModelVersion",
    "ModelVersionStage",
    "ModelVersionStatus",
    "PromotionDecision",
    "PromotionRequest",
    "PromotionState",
    "RegisteredModel",
]


class ModelVersionStage(enum.StrEnum):
    """MLflow's (deprecated but still served) workflow stages."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


ACTIVE_STAGES = (ModelVersionStage.STAGING, ModelVersionStage.PRODUCTION)
"""Stages whose other occupants ``archive_existing_versions`` moves to Archived (as MLflow)."""


class ModelVersionStatus(enum.StrEnum):
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


class LoggedModelStatus(enum.StrEnum):
    """A logged model is PENDING while its files upload, then finalized to READY or FAILED."""

    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int
    source: str
    current_stage: str = ModelVersionStage.NONE
    description: str = ""
    user_id: str = ""
    run_id: str | None = None
    run_link: str | None = None
    model_id: str | None = None
    status: str = ModelVersionStatus.READY
    status_message: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    files_digest: str | None = None
    """Manifest of the files when the version was registered: loading reads exactly these."""
    version_label: str = ""
    """Semantic version (``MAJOR.MINOR.PATCH``): major when the signature changes, minor for a
    retrain, patch for metadata only; set at registration, overridable."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """What the version came from, snapshotted at registration (see
    :data:`loopline.registry.provenance.PROVENANCE_KEYS`): run, code commit, environment,
    metrics, params and the dataset versions the run read."""


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    """alias -> version"""
    latest_versions: list[ModelVersion] = field(default_factory=list)
    """The newest version in each stage that has one, as MLflow's ``latest_versions``."""


@dataclass(frozen=True)
class LoggedModel:
    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    status: str = LoggedModelStatus.PENDING
    status_message: str = ""
    source_run_id: str | None = None
    model_type: str | None = None
    lifecycle_stage: str = "active"
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: ``version`` is None when the alias was removed."""

    name: str
    alias: str
    version: int | None
    previous_version: int | None
    actor: str
    reason: str
    time_ms: int
    seq: int


class PromotionState(enum.StrEnum):
    """A promotion request waits (PENDING) until enough approvals move the alias (APPLIED), an
    approver refuses it (REJECTED), or the alias moved elsewhere first (STALE)."""

    PENDING = "PENDING"
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"
    STALE = "STALE"


@dataclass(frozen=True)
class PromotionDecision:
    actor: str
    approved: bool
    comment: str
    time_ms: int


@dataclass(frozen=True)
class CheckResult:
    """One policy check as evaluated for a request: ``observed`` is None when the metric was
    not found (which fails the check)."""

    check: str
    passed: bool
    observed: float | None
    detail: str


@dataclass(frozen=True)
class PromotionRequest:
    """A request to move ``alias`` of ``name`` to ``version``, held until the alias's policy is
    satisfied. ``expected_version`` is where the alias pointed when the request was made: the
    move is a compare-and-set against it, so an approval never silently overrides a promotion
    that happened in between."""

    request_id: int
    name: str
    version: int
    alias: str
    state: str
    requested_by: str
    reason: str
    expected_version: int | None
    required_approvals: int
    approver_role: str
    created_ms: int
    updated_ms: int
    checks: list[CheckResult] = field(default_factory=list)
    decisions: list[PromotionDecision] = field(default_factory=list)

    @property
    def approvals(self) -> int:
        return sum(1 for d in self.decisions if d.approved)
