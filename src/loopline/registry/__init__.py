"""The model registry: registered models, their versions and aliases, and MLflow 3 logged
models with their files. :class:`RegistryService` is the entry point (``workspace.registry``)."""

from typing import TYPE_CHECKING

from loopline._lazy import lazy_names

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time names load on first use
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

# Each public name and the module that defines it. The service pulls in the stores, and even the
# entities cost ~18 ms; code that needs neither (the CLI's start-up, say) should not pay for them.
_LAZY = {
    "LoggedModel": "loopline.registry.entities",
    "LoggedModelStatus": "loopline.registry.entities",
    "ModelVersion": "loopline.registry.entities",
    "ModelVersionStage": "loopline.registry.entities",
    "ModelVersionStatus": "loopline.registry.entities",
    "RegisteredModel": "loopline.registry.entities",
    "RegistryService": "loopline.registry.service",
    "RegistryStore": "loopline.registry.store",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


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
