"""Model registry records: registered models, their versions, and MLflow 3 logged models.

Field names follow MLflow's model registry protos (``creation_timestamp``,
``last_updated_timestamp``, ``current_stage``, ...), so the MLflow-compatible REST routes map
them without renaming. Versions are ``int`` here; the wire's string form is the adapter's job.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "ACTIVE_STAGES",
    "AliasMove",
    "LoggedModel",
    "LoggedModelStatus",
    "ModelVersion",
    "ModelVersionStage",
    "ModelVersionStatus",
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
