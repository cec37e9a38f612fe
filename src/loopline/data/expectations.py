"""Data validation: expectation suites evaluated as DuckDB queries over one Parquet file.

This module is the public import path; the code lives in modules named for what they hold:

- :mod:`loopline.data.suites`: the expectation models, :class:`Suite`, loading and saving.
- :mod:`loopline.data.results`: :class:`ExpectationResult`, :class:`ValidationReport`,
  :func:`json_value`.
- :mod:`loopline.data.checks`: how each expectation becomes SQL (and :func:`quote`).
- :mod:`loopline.data.drift`: distribution tests against a reference (KS, PSI, chi-squared).
- :mod:`loopline.data.validation`: :func:`validate`, one scan for the whole suite.
- :mod:`loopline.data.inference`: :func:`infer_suite`.

User-supplied column names are always quoted as identifiers and values are always bound as
``?`` parameters: a suite file cannot inject SQL. A problem with the data (a missing column, a
value that cannot be compared) fails that one expectation with a clear ``detail``; only a
malformed suite raises, as :class:`~loopline.errors.InvalidInput` naming the expectation index
and field.
"""

from __future__ import annotations

from loopline.data.checks import quote
from loopline.data.inference import infer_suite
from loopline.data.results import ExpectationResult, ValidationReport, json_value
from loopline.data.suites import (
    EXPECTATION_TYPES,
    TYPE_FAMILIES,
    AllowedValues,
    ColumnPresent,
    ColumnType,
    Distribution,
    Expectation,
    Freshness,
    NullFraction,
    Regex,
    RowCount,
    Suite,
    Unique,
    ValueRange,
    load_suite,
    parse_duration,
    save_suite,
    suite_to_dict,
)
from loopline.data.validation import validate

__all__ = [
    "EXPECTATION_TYPES",
    "TYPE_FAMILIES",
    "AllowedValues",
    "ColumnPresent",
    "ColumnType",
    "Distribution",
    "Expectation",
    "ExpectationResult",
    "Freshness",
    "NullFraction",
    "Regex",
    "RowCount",
    "Suite",
    "Unique",
    "ValidationReport",
    "ValueRange",
    "infer_suite",
    "json_value",
    "load_suite",
    "parse_duration",
    "quote",
    "save_suite",
    "suite_to_dict",
    "validate",
]
