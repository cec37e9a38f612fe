"""What validating a suite produces: one result per expectation and the report around them.

Kept apart from the engine so renderers (:mod:`loopline.data.reports`) and the expectation
planners share these types without importing each other. Every field is JSON-safe, through
:func:`json_value`, so a report is stored and sent without conversion.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["ExpectationResult", "ValidationReport", "json_value"]


@dataclass
class ExpectationResult:
    """One expectation's outcome; every field is JSON-safe so reports need no conversion."""

    expectation: dict[str, Any]
    name: str
    success: bool
    severity: str
    observed: Any = None
    unexpected_count: int | None = None
    unexpected_fraction: float | None = None
    """``unexpected_count`` over all rows (nulls included)."""
    sample: list[dict[str, Any]] = field(default_factory=list)
    sample_row_numbers: list[int] = field(default_factory=list)
    """0-based positions in the Parquet file of the ``sample`` rows, in the same order."""
    detail: str = ""


@dataclass
class ValidationReport:
    """A suite's outcome on one dataset version; ``success`` is what CI gates on."""

    dataset: str
    suite: str
    success: bool
    results: list[ExpectationResult]
    row_count: int
    started_ms: int
    finished_ms: int
    statistics: dict[str, int]
    """``evaluated``, ``passed``, ``failed`` (error severity) and ``warnings`` (failed
    warnings)."""

    @property
    def failures(self) -> list[ExpectationResult]:
        """The failed error-severity expectations: what made the run fail."""
        return [r for r in self.results if not r.success and r.severity == "error"]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_MAX_TEXT = 200


def json_value(value: Any, *, max_text: int | None = None) -> Any:
    """A JSON-safe copy: temporal values as ISO strings, NaN/infinity as strings, decimals as
    strings (no precision lost), bytes as hex; long text cut so a sample row stays readable."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        if max_text is not None and len(value) > max_text:
            return value[:max_text] + "…"
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return json_value(bytes(value).hex(), max_text=max_text)
    if isinstance(value, Mapping):
        return {str(k): json_value(v, max_text=max_text) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_value(v, max_text=max_text) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return json_value(value.item(), max_text=max_text)
    return json_value(str(value), max_text=max_text)
