"""The model registry: registered models, their versions and aliases, and MLflow 3 logged
models with their files. :class:`RegistryService` is the entry point (``workspace.registry``)."""

from __future__ import annotations

from loopline.registry.entities import (
    LoggedModel,
    LoggedModelStatus,
    ModelVersion,
    ModelVersionStage,
    ModelVersionStatus,
    RegisteredModel,
)
from loopline.registry.service import RegistryService
from loopline.registry.store import RegistryStore

__all__ = [
    "LoggedModel",
    "LoggedModelStatus",
    "ModelVersion",
    "ModelVersionStage",
    "ModelVersionStatus",
    "RegisteredModel",
    "RegistryService",
    "RegistryStore",
]
