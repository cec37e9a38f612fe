"""Expectation suites: the models a suite file is checked against, and loading and saving them.

A suite is data a user edits (YAML, or Python that builds it), so this module is only about its
shape: each expectation is a frozen pydantic model with ``extra="forbid"``, and a malformed
suite raises :class:`~loopline.errors.InvalidInput` naming the expectation index and field.
How a suite is evaluated lives in :mod:`loopline.data.validation`; the public import path for
all of it is :mod:`loopline.data.expectations`.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import re
import runpy
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loopline.errors import InvalidInput, NotFound

__all__ = [
    "EXPECTATION_TYPES",
    "TYPE_FAMILIES",
    "AllowedValues",
    "ColumnPresent",
    "ColumnType",
    "Distribution",
    "Expectation",
    "Freshness",
    "NullFraction",
    "Regex",
    "RowCount",
    "Suite",
    "Unique",
    "ValueRange",
    "load_suite",
    "parse_duration",
    "save_suite",
    "suite_to_dict",
]


Severity = Literal["error", "warning"]
Bound = int | float | str | dt.datetime | dt.date
"""A range bound: a number, or a date/timestamp (an ISO string in YAML) DuckDB compares to it."""

_STRING_VIEW = getattr(pa.types, "is_string_view", lambda t: False)
TYPE_FAMILIES: dict[str, Callable[[pa.DataType], bool]] = {
    "integer": pa.types.is_integer,
    "float": pa.types.is_floating,
    "numeric": lambda t: (
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    ),
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or _STRING_VIEW(t),
    "boolean": pa.types.is_boolean,
    "timestamp": pa.types.is_timestamp,
    "date": pa.types.is_date,
}
"""``column_type`` accepts a family name or an exact Arrow type string (``int64``,
``timestamp[us, tz=UTC]``); a family keeps a suite valid when a writer widens int32 to int64."""

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")


def parse_duration(value: str | float) -> float:
    """Seconds in ``"24h"``, ``"7d"``, ``"1h30m"``, ``"90s"`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like '24h', '7d', '30m' or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not text or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"{value!r} is not a duration; use '24h', '7d', '30m' or a number of seconds"
                ) from None
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("must be a positive duration")
    return seconds


# --- the suite model ------------------------------------------------------------------------


class _Base(BaseModel):
    """Fields every expectation has. ``extra="forbid"`` turns a misspelt key into an error
    instead of a silently skipped check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    severity: Severity = "error"
    """A failed ``warning`` is reported but never fails the run."""

    def column_names(self) -> list[str]:
        """The columns the expectation reads; each must exist in the data."""
        column = getattr(self, "column", None)
        return [column] if column is not None else []

    def label(self) -> str:
        """The given name, else a readable default such as ``null_fraction(email)``."""
        if self.name:
            return self.name
        type_ = getattr(self, "type")  # noqa: B009 - declared on each subclass
        columns = self.column_names()
        return f"{type_}({', '.join(columns)})" if columns else type_


class ColumnPresent(_Base):
    type: Literal["column_present"] = "column_present"
    column: str = Field(min_length=1)


class ColumnType(_Base):
    type: Literal["column_type"] = "column_type"
    column: str = Field(min_length=1)
    dtype: str = Field(min_length=1)
    """A family from :data:`TYPE_FAMILIES` or an Arrow type string. Named ``dtype`` because
    ``type`` is the discriminator."""

    @field_validator("dtype")
    @classmethod
    def _known(cls, value: str) -> str:
        if value in TYPE_FAMILIES or "[" in value or "<" in value or "(" in value:
            return value
        try:
            pa.type_for_alias(value)
        except (ValueError, KeyError):
            families = ", ".join(TYPE_FAMILIES)
            raise ValueError(
                f"unknown type {value!r}; use an Arrow type such as 'int64' or one of: {families}"
            ) from None
        return value

    def matches(self, actual: pa.DataType) -> bool:
        if self.dtype in TYPE_FAMILIES:
            return TYPE_FAMILIES[self.dtype](actual)
        try:
            wanted = str(pa.type_for_alias(self.dtype))
        except (ValueError, KeyError):
            wanted = self.dtype.replace(" ", "")
        return wanted.replace(" ", "") == str(actual).replace(" ", "")


class NullFraction(_Base):
    type: Literal["null_fraction"] = "null_fraction"
    column: str = Field(min_length=1)
    max: float = Field(ge=0, le=1)


class ValueRange(_Base):
    """Non-null values lie in ``[min, max]`` (``(min, max)`` when strict); NaN is out of range."""

    type: Literal["value_range"] = "value_range"
    column: str = Field(min_length=1)
    min: Bound | None = None
    max: Bound | None = None
    strict: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> ValueRange:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        low, high = self.min, self.max
        if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
            raise ValueError(f"min ({low}) is greater than max ({high})")
        return self


class AllowedValues(_Base):
    """Every non-null value is one of ``values``."""

    type: Literal["allowed_values"] = "allowed_values"
    column: str = Field(min_length=1)
    values: list[bool | int | float | str] = Field(min_length=1)


@functools.lru_cache(maxsize=256)
def _regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot run in both engines, or None. DuckDB evaluates it with RE2, which
    has no backreferences or lookaround; Python's ``re`` is checked too so the pattern means
    the same when a user tries it in Python."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    with duckdb.connect() as con:
        try:
            con.execute("SELECT regexp_full_match('', ?)", [pattern]).fetchall()
        except duckdb.Error as exc:
            message = str(exc).split("\n", 1)[0]
            return (
                f"not supported by DuckDB's RE2 engine (no backreferences or lookaround): {message}"
            )
    return None


class Regex(_Base):
    """Every non-null value (as text) matches ``pattern`` in full."""

    type: Literal["regex"] = "regex"
    column: str = Field(min_length=1)
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        if (problem := _regex_problem(value)) is not None:
            raise ValueError(problem)
        return value


class Unique(_Base):
    """No two rows share the same non-null key (a row with any null key column is skipped, as
    SQL ``UNIQUE`` does)."""

    type: Literal["unique"] = "unique"
    columns: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _single_column(cls, data: Any) -> Any:
        """``column: id`` is accepted as shorthand for ``columns: [id]``."""
        if isinstance(data, Mapping) and "column" in data and "columns" not in data:
            data = {**data, "columns": [data["column"]]}
            del data["column"]
        return data

    def column_names(self) -> list[str]:
        return list(self.columns)


class RowCount(_Base):
    type: Literal["row_count"] = "row_count"
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> RowCount:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Freshness(_Base):
    """The newest value of a timestamp or date column is at most ``max_age`` old."""

    type: Literal["freshness"] = "freshness"
    column: str = Field(min_length=1)
    max_age: str | int | float
    now: dt.datetime | None = None
    """The moment ages are measured from; tests pin it. Naive times are UTC."""

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        """Checked when the suite loads, so a typo fails before any data is read."""
        parse_duration(value)
        return value

    @property
    def max_age_seconds(self) -> float:
        return parse_duration(self.max_age)


class Distribution(_Base):
    """The column's distribution matches the reference version's (a drift test).

    ``ks`` and ``chi2`` pass when their p-value is at least ``threshold`` (default 0.05) and run
    on a reservoir sample of ``sample_size`` rows per side: on millions of rows every p-value
    test flags practically meaningless shifts. ``psi`` passes when the population stability
    index is at most ``threshold`` (default 0.2) and counts every row.
    """

    type: Literal["distribution"] = "distribution"
    column: str = Field(min_length=1)
    test: Literal["ks", "psi", "chi2"]
    threshold: float | None = Field(default=None, ge=0)
    bins: int = Field(default=10, ge=2, le=100)
    """How many quantile bins of the reference a numeric column is cut into for psi/chi2. A
    categorical column (or a numeric one with at most ``bins`` distinct values) is compared on
    the reference's 50 most frequent values plus one "other" bucket."""
    sample_size: int = Field(default=10_000, ge=100, le=1_000_000)
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _p_value(self) -> Distribution:
        if self.test != "psi" and self.threshold is not None and self.threshold > 1:
            raise ValueError(f"threshold is a minimum p-value for {self.test}; must be <= 1")
        return self

    def label(self) -> str:
        return self.name or f"distribution({self.column}, {self.test})"

    @property
    def effective_threshold(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return 0.2 if self.test == "psi" else 0.05


Expectation = Annotated[
    ColumnPresent
    | ColumnType
    | NullFraction
    | ValueRange
    | AllowedValues
    | Regex
    | Unique
    | RowCount
    | Freshness
    | Distribution,
    Field(discriminator="type"),
]
EXPECTATION_TYPES = (
    "column_present",
    "column_type",
    "null_fraction",
    "value_range",
    "allowed_values",
    "regex",
    "unique",
    "row_count",
    "freshness",
    "distribution",
)


class Suite(BaseModel):
    """A named list of expectations; ``reference`` names the dataset version (``NAME@v``) that
    distribution checks compare against, so the CLI can resolve it without a flag."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str | None = None
    reference: str | None = None
    expectations: list[Expectation] = Field(default_factory=list)


# --- loading and saving ---------------------------------------------------------------------

_COMPARISONS = {
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
}


def _error_location(loc: Sequence[int | str]) -> str:
    """``('expectations', 3, 'null_fraction', 'max')`` -> ``expectations[3].max``: the tag
    pydantic inserts for a discriminated union means nothing to someone editing YAML."""
    text = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif i > 0 and isinstance(loc[i - 1], int) and part in EXPECTATION_TYPES:
            continue
        else:
            text += f".{part}" if text else str(part)
    return text or "suite"


def _error_message(error: Mapping[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _COMPARISONS:
        symbol, key = _COMPARISONS[kind]
        return (
            f"must be {symbol} {ctx[key]:g}"
            if isinstance(ctx[key], float)
            else (f"must be {symbol} {ctx[key]}")
        )
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "union_tag_invalid":
        expected = ", ".join(EXPECTATION_TYPES)
        return f"unknown expectation type {ctx['tag']!r}; expected one of: {expected}"
    if kind == "union_tag_not_found":
        return f"missing 'type'; expected one of: {', '.join(EXPECTATION_TYPES)}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length', 1)} item(s)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return message.replace("Input should be", "must be")


def _parse(data: Any, source: str) -> Suite:
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_error_location(e['loc'])}: {_error_message(e)}" for e in exc.errors()]
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InvalidInput(f"invalid suite {source}: {'; '.join(problems[:5])}{more}") from None


def load_suite(source: str | os.PathLike[str] | Mapping[str, Any] | Suite) -> Suite:
    """A suite from a YAML (or JSON) file, a ``.py`` file defining ``suite`` (a :class:`Suite`,
    a mapping, or a list of expectation dicts), a mapping, or a Suite (returned as is).

    A ``.py`` suite is executed: load only files you would run yourself.
    """
    if isinstance(source, Suite):
        return source
    if isinstance(source, Mapping):
        return _parse(source, "mapping")
    path = Path(source)
    if not path.is_file():
        raise NotFound(f"suite file '{path}' not found")
    if path.suffix == ".py":
        try:
            value = runpy.run_path(str(path), run_name="loopline_suite").get("suite")
        except Exception as exc:
            raise InvalidInput(f"suite file '{path}' failed to run: {exc!r}") from exc
        if value is None:
            raise InvalidInput(f"suite file '{path}' defines no 'suite' variable")
    else:
        try:
            value = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InvalidInput(f"suite file '{path}' is not valid YAML: {exc}") from None
    if isinstance(value, Suite):
        return value
    if isinstance(value, list):
        value = {"name": path.stem, "expectations": value}
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"suite file '{path}' must hold a mapping with 'name' and 'expectations'"
        )
    return _parse(value, f"'{path}'")


def _expectation_dict(expectation: _Base) -> dict[str, Any]:
    """``type`` first, then only the fields that differ from their defaults (``name`` and
    ``severity`` last), so a saved suite reads like a hand-written one."""
    data = expectation.model_dump(mode="json", exclude_defaults=True)
    data.pop("type", None)
    common = {k: data.pop(k) for k in ("name", "severity") if k in data}
    return {"type": getattr(expectation, "type"), **data, **common}  # noqa: B009


def suite_to_dict(suite: Suite) -> dict[str, Any]:
    data: dict[str, Any] = {"name": suite.name}
    if suite.description:
        data["description"] = suite.description
    if suite.reference:
        data["reference"] = suite.reference
    data["expectations"] = [_expectation_dict(e) for e in suite.expectations]
    return data


def save_suite(suite: Suite, path: str | os.PathLike[str]) -> None:
    """Write the suite as YAML, atomically: a reader never sees half a suite."""
    target = Path(path)
    text = yaml.safe_dump(suite_to_dict(suite), sort_keys=False, allow_unicode=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
    ) as tmp:
        tmp.write(text)
    os.replace(tmp.name, target)
