"""The model registry: registered models, their versions and aliases, and MLflow 3 logged
models with their files. :class:`RegistryService` is the entry point (``workspace.registry``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.registry.entities import (
    LoggedModel,
    LoggedModelStatus,
    ModelVersion,
    ModelVersionStage,
    ModelVersionStatus,
    RegisteredModel,
)

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    # The service pulls in the stores; code that needs only the entities (the CLI's start-up,
    # say) should not pay for them.
    if name == "RegistryService":
        from loopline.registry.service import RegistryService

        return RegistryService
    if name == "RegistryStore":
        from loopline.registry.store import RegistryStore

        return RegistryStore
    raise AttributeError(f"module 'loopline.registry' has no attribute {name!r}")
