"""Turning ``module:function`` and command-line strings into a pipeline and its parameters:
what ``loopline pipeline run`` and the scheduler start from."""

from __future__ import annotations

import importlib
import json
import os
import sys
import typing
from collections.abc import Mapping
from typing import Any

from loopline.errors import InvalidInput, NotFound
from loopline.pipelines.steps import Pipeline, pipeline

__all__ = ["coerce_params", "load_target"]


def import_target(target: str) -> Any:
    """What ``module:attribute`` names (dots after the colon walk attributes); the current
    directory is importable, as for ``python -m``. The one importer behind ``pipeline run``
    and the scheduler's launches."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidInput(f"target {target!r} must look like module.path:function")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotFound(f"cannot import module {module_name!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(found, part):
            raise NotFound(f"module {module_name!r} has no {attr!r}")
        found = getattr(found, part)
    return found


def load_target(target: str) -> Pipeline:
    """The pipeline ``module:function`` names; a plain function is wrapped as a pipeline."""
    found = import_target(target)
    if isinstance(found, Pipeline):
        return found
    if callable(found):
        return pipeline(found)
    raise InvalidInput(f"{target!r} is not a function")


def coerce_params(pipe: Pipeline, params: Mapping[str, str]) -> dict[str, Any]:
    """Command-line strings to the types the pipeline function's annotations (or defaults)
    declare: int, float, bool; anything else is parsed as JSON when it parses, else kept."""
    try:
        hints = typing.get_type_hints(pipe.fn)
    except Exception:
        hints = {}
    out: dict[str, Any] = {}
    for key, text in params.items():
        parameter = pipe.signature.parameters.get(key)
        kind = hints.get(key)
        if kind is None and parameter is not None and parameter.default is not parameter.empty:
            kind = type(parameter.default) if parameter.default is not None else None
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                out[key] = text.lower() in ("true", "1", "yes")
            elif kind in (int, float):
                out[key] = kind(text)
            elif kind is str:
                out[key] = text
            else:
                try:
                    out[key] = json.loads(text)
                except ValueError:
                    out[key] = text
        except ValueError:
            raise InvalidInput(f"--param {key}={text!r}: expected {kind.__name__}") from None
    return out
