"""Validation reports as JSON (for pipelines and CI) and as one self-contained HTML page (for
people). Both render the same :class:`~loopline.data.expectations.ValidationReport`; the HTML
escapes every value, since sample rows are whatever the data holds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from loopline._version import __version__
from loopline.data.expectations import ValidationReport, json_value
from loopline.documents import atomic_write, environment

__all__ = ["report_html", "report_json", "write_report"]


def report_json(report: ValidationReport, *, indent: int | None = 2) -> str:
    """The report as strict JSON (no NaN): results already hold only JSON-safe values."""
    return json.dumps(json_value(report.to_dict()), indent=indent, ensure_ascii=False)


def _compact(value: Any) -> str:
    """An observed value on one line; long ones (drift bins) are cut, the JSON has them all."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= 160 else text[:160] + "…"


def _sample_cell(value: Any) -> str:
    """A sample row's value as the data holds it: text as is, anything else as JSON (so
    ``null`` and ``"null"`` differ)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


_FILTERS = (("compact", _compact), ("cell", _sample_cell))
"""The report's own filters; its ``cell`` prints sample values, not Markdown table cells."""


def report_html(report: ValidationReport) -> str:
    """One page with inline CSS and no scripts: a summary, a table of every expectation, and
    for each failure its detail and sample rows."""
    failed = []
    for index, result in enumerate(report.results):
        if result.success:
            continue
        columns: list[str] = []
        for row in result.sample:
            columns.extend(c for c in row if c not in columns)
        failed.append((index, result, columns))
    return (
        environment("loopline.data", html=True, filters=_FILTERS)
        .get_template("validation.html.j2")
        .render(report=report, failed=failed, loopline_version=__version__)
    )


def write_report(report: ValidationReport, path: str | os.PathLike[str]) -> Path:
    """Write the JSON (``.json``) or HTML (any other suffix) report atomically."""
    target = Path(path)
    text = report_json(report) if target.suffix.lower() == ".json" else report_html(report)
    return atomic_write(target, text)
