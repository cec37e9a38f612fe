"""Validation reports as JSON (for pipelines and CI) and as one self-contained HTML page (for
people). Both render the same :class:`~loopline.data.expectations.ValidationReport`; the HTML
escapes every value, since sample rows are whatever the data holds.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline._version import __version__
from loopline.data.expectations import ValidationReport, json_value

if TYPE_CHECKING:
    import jinja2

__all__ = ["report_html", "report_json", "write_report"]


def report_json(report: ValidationReport, *, indent: int | None = 2) -> str:
    """The report as strict JSON (no NaN): results already hold only JSON-safe values."""
    return json.dumps(json_value(report.to_dict()), indent=indent, ensure_ascii=False)


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _compact(value: Any) -> str:
    """An observed value on one line; long ones (drift bins) are cut, the JSON has them all."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= 160 else text[:160] + "…"


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("loopline.data", "templates"),
        autoescape=True,  # sample rows are arbitrary data: every value is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(when=_when, number=_number, percent=_percent, compact=_compact, cell=_cell)
    return env


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
        _environment()
        .get_template("validation.html.j2")
        .render(report=report, failed=failed, loopline_version=__version__)
    )


def write_report(report: ValidationReport, path: str | os.PathLike[str]) -> Path:
    """Write the JSON (``.json``) or HTML (any other suffix) report atomically."""
    target = Path(path)
    text = report_json(report) if target.suffix.lower() == ".json" else report_html(report)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
    ) as tmp:
        tmp.write(text)
    os.replace(tmp.name, target)
    return target
