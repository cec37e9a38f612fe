"""Checks on registry input, run before anything reaches the store. Limits and messages follow
MLflow's, so anything Loopline accepts the MLflow protocol accepts too (with the one deviation
noted on :data:`MAX_MODEL_NAME_LEN`)."""

from __future__ import annotations

import re
from typing import Any

from loopline.entities import MAX_ID_LEN
from loopline.errors import InvalidInput
from loopline.registry.entities import ModelVersionStage

__all__ = [
    "MAX_ALIAS_LEN",
    "MAX_MODEL_NAME_LEN",
    "MAX_VERSION",
    "check_alias",
    "check_logged_model_id",
    "check_model_name",
    "check_request_id",
    "check_stage",
    "check_version",
    "optional_text",
]

MAX_VERSION = 2**31 - 1
MAX_MODEL_NAME_LEN = MAX_ID_LEN - len(f"/{MAX_VERSION}")
"""245, not MLflow's 256: a version is referenced as ``<name>/<version>`` in lineage and the
event log, whose ids hold 256 characters, and that reference must always fit."""
MAX_ALIAS_LEN = 255
MAX_TEXT_LEN = 100_000
_ALIAS = re.compile(r"^[\w\-]+$")
_VERSION_LIKE_ALIAS = re.compile(r"^[vV]\d+$")
_LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_model_name(name: Any, field: str = "registered model name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{field} must be a non-empty string, got {name!r}")
    if len(name) > MAX_MODEL_NAME_LEN:
        raise InvalidInput(
            f"{field} {name[:40]!r}... is longer than {MAX_MODEL_NAME_LEN} characters"
        )
    if "/" in name:
        # models:/<name>/<version> URIs split on '/', so such a name could never be loaded.
        raise InvalidInput(f"{field} {name!r} must not contain '/'")
    if _CONTROL.search(name):
        raise InvalidInput(f"{field} {name!r} must not contain control characters")
    return name


def check_version(version: Any) -> int:
    """A version number as MLflow sends it (``"3"``) or as Python passes it (``3``)."""
    if isinstance(version, bool):
        raise InvalidInput(f"model version must be a positive whole number, got {version!r}")
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version.strip())
    if not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise InvalidInput(f"model version must be a positive whole number, got {version!r}")
    return version


def check_stage(stage: Any) -> ModelVersionStage:
    """The canonical stage for ``stage``, matched case-insensitively as MLflow does."""
    if isinstance(stage, str):
        for known in ModelVersionStage:
            if known.value.lower() == stage.strip().lower():
                return known
    raise InvalidInput(
        f"model version stage {stage!r} is not one of "
        f"{', '.join(s.value for s in ModelVersionStage)}"
    )


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not alias:
        raise InvalidInput(f"model alias must be a non-empty string, got {alias!r}")
    if len(alias) > MAX_ALIAS_LEN:
        raise InvalidInput(
            f"model alias {alias[:40]!r}... is longer than {MAX_ALIAS_LEN} characters"
        )
    if not _ALIAS.match(alias):
        raise InvalidInput(f"model alias {alias!r} may only contain letters, digits, '_' and '-'")
    if alias.lower() == "latest":
        raise InvalidInput("model alias 'latest' is reserved: it always means the newest version")
    if _VERSION_LIKE_ALIAS.match(alias):
        raise InvalidInput(
            f"model alias {alias!r} looks like a version number (v<digits>); pick another name"
        )
    return alias


def check_logged_model_id(model_id: Any) -> str:
    if not isinstance(model_id, str) or not _LOGGED_MODEL_ID.match(model_id):
        raise InvalidInput(
            f"logged model id {model_id!r} is not valid: expected 'm-' and 32 lowercase hex "
            "characters"
        )
    return model_id


def optional_text(value: Any, field: str, max_len: int = MAX_TEXT_LEN) -> str:
    """Free text such as a description: ``None`` means empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise InvalidInput(f"{field} is longer than {max_len} characters")
    if "\x00" in value:
        raise InvalidInput(f"{field} contains a NUL character")
    return value


def check_request_id(value: Any) -> int:
    """A promotion request number as a URL or the CLI gives it (``"7"``) or Python (``7``)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise InvalidInput(f"promotion request id must be a positive whole number, got {value!r}")
    return value
