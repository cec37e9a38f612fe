"""Naming one registered model version on the command line: ``NAME@ALIAS`` or
``NAME/VERSION``, optionally behind ``models:/``. One parser for the model card, the container
build and ``loopline serve``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopline.errors import InvalidInput

if TYPE_CHECKING:
    from loopline.registry.entities import ModelVersion
    from loopline.registry.service import RegistryService

__all__ = ["ModelRef", "parse_model_ref", "resolve_version"]

# Model names never contain "/" and aliases never contain "@" (the registry refuses both).
_REF = re.compile(r"^(?:models:/)?(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model version named by alias or number."""

    name: str
    alias: str | None = None
    version: int | None = None


def parse_model_ref(ref: str) -> ModelRef:
    """``NAME@ALIAS``, ``NAME/VERSION``, ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``."""
    match = _REF.match(ref.strip())
    if not match:
        raise InvalidInput(
            f"model {ref!r}: name a registered version as NAME/VERSION or NAME@ALIAS (also "
            "behind models:/), e.g. fraud/3 or fraud@champion"
        )
    version = match["version"]
    return ModelRef(match["name"], match["alias"], int(version) if version else None)


def resolve_version(registry: RegistryService, ref: str | ModelRef) -> ModelVersion:
    """The version ``ref`` names now. Callers then address it by number, so an alias that
    moves meanwhile cannot make them mix files of two versions."""
    parsed = parse_model_ref(ref) if isinstance(ref, str) else ref
    if parsed.alias is not None:
        return registry.get_version_by_alias(parsed.name, parsed.alias)
    return registry.get_model_version(parsed.name, parsed.version or 0)
