"""Data validation: expectation suites evaluated as DuckDB queries over one Parquet file.

Every expectation becomes SQL over only the columns it names, so a dataset of any size streams
through DuckDB in row groups and is never loaded into memory. Row-level checks (nulls, ranges,
allowed values, regexes), freshness and the row count are folded into one aggregate query, so
a suite costs one scan plus one small query per failure (its sample rows) and per uniqueness or
distribution check.

User-supplied column names are always quoted as identifiers and values are always bound as
``?`` parameters: a suite file cannot inject SQL. A problem with the data (a missing column, a
value that cannot be compared) fails that one expectation with a clear ``detail``; only a
malformed suite raises, as :class:`~loopline.errors.InvalidInput` naming the expectation index
and field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import math
import os
import re
import runpy
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
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


# --- results ----------------------------------------------------------------------------------


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


# --- evaluation -------------------------------------------------------------------------------


def quote(name: str) -> str:
    """A SQL identifier for any column name: a ``"`` inside is doubled."""
    return '"' + name.replace('"', '""') + '"'


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n", 1)[0]


def _read_schema(path: Path) -> pa.Schema:
    if not path.is_file():
        raise NotFound(f"Parquet file '{path}' not found")
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"'{path}' is not a readable Parquet file: {exc}") from None


def _connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection set up to see every value as it is.

    Parquet writers leave NaN out of a float column's min/max statistics (as the format
    requires), but DuckDB's filter pushdown and statistics propagation trust those bounds:
    ``WHERE isnan(x)`` or ``x > 2`` over ``[1.0, NaN]`` finds nothing. A validator must not
    miss NaN, so both optimizations are off; we scan every row anyway, so they save little.
    """
    con = duckdb.connect()
    con.execute("SET disabled_optimizers = 'filter_pushdown,statistics_propagation'")
    con.execute("SET TimeZone = 'UTC'")  # sample rows show instants in UTC, not local time
    return con


@dataclass
class _Table:
    """One Parquet file registered as a DuckDB view, with its Arrow schema read from the
    footer (column checks never scan data)."""

    view: str
    schema: pa.Schema
    row_numbers: bool
    """Whether the view has DuckDB's ``file_row_number``; off when a column has that name."""

    @classmethod
    def register(cls, con: duckdb.DuckDBPyConnection, path: Path, view: str) -> _Table:
        schema = _read_schema(path)
        # DuckDB names are case-insensitive: any spelling of the name would clash.
        row_numbers = "file_row_number" not in {name.lower() for name in schema.names}
        con.read_parquet(str(path), file_row_number=row_numbers).create_view(view)
        return cls(view, schema, row_numbers)

    def type_of(self, column: str) -> pa.DataType | None:
        # Not get_field_index: it answers -1 for a name that occurs twice.
        return next((f.type for f in self.schema if f.name == column), None)


@dataclass
class _Plan:
    """Aggregates to compute in the shared scan, then what to make of their values."""

    aggregates: list[tuple[str, list[Any]]]
    finish: Callable[[Sequence[Any]], ExpectationResult]


@dataclass
class _Context:
    con: duckdb.DuckDBPyConnection
    table: _Table
    reference: _Table | None
    row_count: int
    now: dt.datetime
    sample_rows: int

    def result(self, e: _Base, success: bool, **values: Any) -> ExpectationResult:
        return ExpectationResult(
            expectation=_expectation_dict(e),
            name=e.label(),
            success=success,
            severity=e.severity,
            **values,
        )

    def rows(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def unexpected(
        self, e: _Base, success: bool, count: int, where: str, params: list[Any], **values: Any
    ) -> ExpectationResult:
        """A row-level result: counts, fraction, and the first failing rows in file order
        (DuckDB keeps Parquet order for a filtered scan, and LIMIT stops it early)."""
        sample: list[dict[str, Any]] = []
        numbers: list[int] = []
        if count and self.sample_rows > 0:
            rows = self.rows(
                f"SELECT * FROM {self.table.view} WHERE {where} LIMIT {int(self.sample_rows)}",
                params,
            )
            for row in rows:
                if self.table.row_numbers:
                    numbers.append(int(row.pop("file_row_number")))
                sample.append(json_value(row, max_text=_MAX_TEXT))
        fraction = count / self.row_count if self.row_count else 0.0
        return self.result(
            e,
            success,
            unexpected_count=count,
            unexpected_fraction=fraction,
            sample=sample,
            sample_row_numbers=numbers,
            **values,
        )

    def top_values(self, column: str, where: str, params: list[Any]) -> list[dict[str, Any]]:
        """The most frequent unexpected values, so a report says *what* is wrong."""
        rows = self.con.execute(
            f"SELECT {quote(column)}, count(*) FROM {self.table.view} WHERE {where} "
            f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10",
            params,
        ).fetchall()
        return [{"value": json_value(v, max_text=_MAX_TEXT), "count": int(n)} for v, n in rows]


def _plan_column_present(e: ColumnPresent, ctx: _Context) -> ExpectationResult:
    present = e.column in ctx.table.schema.names
    detail = "" if present else _missing(e.column, ctx.table)
    return ctx.result(e, present, observed=present, detail=detail)


def _plan_column_type(e: ColumnType, ctx: _Context) -> ExpectationResult:
    actual = ctx.table.type_of(e.column)
    assert actual is not None  # missing columns are answered before planning
    ok = e.matches(actual)
    detail = "" if ok else f"column '{e.column}' has type {actual}, expected {e.dtype}"
    return ctx.result(e, ok, observed=str(actual), detail=detail)


def _plan_null_fraction(e: NullFraction, ctx: _Context) -> _Plan:
    where = f"{quote(e.column)} IS NULL"

    def finish(values: Sequence[Any]) -> ExpectationResult:
        nulls = int(values[0] or 0)
        fraction = nulls / ctx.row_count if ctx.row_count else 0.0
        ok = fraction <= e.max + 1e-12
        detail = (
            ""
            if ok
            else (
                f"{nulls} of {ctx.row_count} values are null ({fraction:.2%}); "
                f"at most {e.max:.2%} may be"
            )
        )
        return ctx.unexpected(
            e, ok, 0 if ok else nulls, where, [], observed=fraction, detail=detail
        )

    return _Plan([(f"count_if({where})", [])], finish)


def _plan_value_range(e: ValueRange, ctx: _Context) -> _Plan:
    column = quote(e.column)
    low, high = (">", "<") if e.strict else (">=", "<=")
    tests, params = [], []
    if e.min is not None:
        tests.append(f"{column} {low} ?")
        params.append(e.min)
    if e.max is not None:
        tests.append(f"{column} {high} ?")
        params.append(e.max)
    where = f"{column} IS NOT NULL AND NOT ({' AND '.join(tests)})"
    bounds = f"{'(' if e.strict else '['}{e.min if e.min is not None else '-inf'}, " + (
        f"{e.max if e.max is not None else 'inf'}{')' if e.strict else ']'}"
    )

    def finish(values: Sequence[Any]) -> ExpectationResult:
        count = int(values[0] or 0)
        observed = {"min": json_value(values[1]), "max": json_value(values[2])}
        detail = f"{_plural(count, 'value')} outside {bounds}" if count else ""
        return ctx.unexpected(e, count == 0, count, where, params, observed=observed, detail=detail)

    aggregates = [(f"count_if({where})", params), (f"min({column})", []), (f"max({column})", [])]
    return _Plan(aggregates, finish)


def _plan_value_set(e: AllowedValues | Regex, ctx: _Context) -> _Plan:
    column = quote(e.column)
    if isinstance(e, AllowedValues):
        kind = ctx.table.type_of(e.column)
        as_text = kind is not None and TYPE_FAMILIES["string"](kind)
        # Text columns compare as text: ``code IN (1, 2)`` would make DuckDB cast every code.
        params: list[Any] = [str(v) if as_text else v for v in e.values]
        where = f"{column} IS NOT NULL AND {column} NOT IN ({', '.join('?' * len(params))})"
        what = "not in the allowed set"
    else:
        params = [e.pattern]
        where = f"{column} IS NOT NULL AND NOT regexp_full_match(CAST({column} AS VARCHAR), ?)"
        what = f"not matching {e.pattern!r}"

    def finish(values: Sequence[Any]) -> ExpectationResult:
        count = int(values[0] or 0)
        top = ctx.top_values(e.column, where, params) if count else []
        shown = ", ".join(f"{t['value']!r} ({t['count']})" for t in top[:5])
        detail = f"{_plural(count, 'value')} {what}: {shown}" if count else ""
        return ctx.unexpected(
            e, count == 0, count, where, params, observed={"unexpected_values": top}, detail=detail
        )

    return _Plan([(f"count_if({where})", params)], finish)


def _plan_unique(e: Unique, ctx: _Context) -> _Plan:
    keys = ", ".join(quote(c) for c in e.column_names())
    not_null = " AND ".join(f"{quote(c)} IS NOT NULL" for c in e.column_names())
    groups = (
        f"SELECT {keys}, count(*) AS __loopline_n FROM {ctx.table.view} WHERE {not_null} "
        f"GROUP BY {keys} HAVING count(*) > 1"
    )

    def finish(_: Sequence[Any]) -> ExpectationResult:
        duplicate_groups, rows = ctx.con.execute(
            f"SELECT count(*), coalesce(sum(__loopline_n), 0) FROM ({groups})"
        ).fetchone() or (0, 0)
        rows = int(rows)
        sample: list[dict[str, Any]] = []
        numbers: list[int] = []
        if rows and ctx.sample_rows > 0:
            on = " AND ".join(f"t.{quote(c)} = d.{quote(c)}" for c in e.column_names())
            order = "ORDER BY t.file_row_number " if ctx.table.row_numbers else ""
            for row in ctx.rows(
                f"SELECT t.* FROM {ctx.table.view} AS t SEMI JOIN ({groups}) AS d ON {on} "
                f"{order}LIMIT {int(ctx.sample_rows)}",
                [],
            ):
                if ctx.table.row_numbers:
                    numbers.append(int(row.pop("file_row_number")))
                sample.append(json_value(row, max_text=_MAX_TEXT))
        detail = (
            f"{_plural(rows, 'row')} share their ({', '.join(e.column_names())}) with another "
            f"row ({_plural(duplicate_groups, 'duplicated value')})"
            if rows
            else ""
        )
        return ctx.result(
            e,
            rows == 0,
            observed={"duplicate_groups": int(duplicate_groups), "duplicated_rows": rows},
            unexpected_count=rows,
            unexpected_fraction=rows / ctx.row_count if ctx.row_count else 0.0,
            sample=sample,
            sample_row_numbers=numbers,
            detail=detail,
        )

    return _Plan([], finish)


def _plan_row_count(e: RowCount, ctx: _Context) -> ExpectationResult:
    n = ctx.row_count
    ok = (e.min is None or n >= e.min) and (e.max is None or n <= e.max)
    wanted = " and ".join(
        text
        for text in (
            f">= {e.min}" if e.min is not None else "",
            f"<= {e.max}" if e.max is not None else "",
        )
        if text
    )
    detail = "" if ok else f"{n} rows; expected {wanted}"
    return ctx.result(e, ok, observed=n, detail=detail)


def _age_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _plan_freshness(e: Freshness, ctx: _Context) -> _Plan | ExpectationResult:
    kind = ctx.table.type_of(e.column)
    if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        return ctx.result(
            e,
            False,
            detail=f"column '{e.column}' has type {kind}; freshness needs a timestamp or date",
        )
    now = e.now or ctx.now
    now = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
    allowed = e.max_age if isinstance(e.max_age, str) else _age_text(e.max_age_seconds)

    def finish(values: Sequence[Any]) -> ExpectationResult:
        if values[0] is None:
            return ctx.result(e, False, detail=f"column '{e.column}' has no non-null values")
        newest = dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=int(values[0]))
        age = (now - newest).total_seconds()
        ok = age <= e.max_age_seconds
        detail = (
            ""
            if ok
            else (
                f"newest value {newest.isoformat()} is {_age_text(age)} old; "
                f"at most {allowed} is allowed"
            )
        )
        observed = {"max": newest.isoformat(), "age_seconds": age, "now": now.isoformat()}
        return ctx.result(e, ok, observed=observed, detail=detail)

    # epoch_us reads a naive TIMESTAMP as UTC and a TIMESTAMPTZ as the instant it is.
    return _Plan([(f"epoch_us(max({quote(e.column)}))", [])], finish)


def _plan_distribution(e: Distribution, ctx: _Context) -> _Plan | ExpectationResult:
    reference = ctx.reference
    if reference is None:
        return ctx.result(
            e,
            False,
            detail="no reference dataset to compare with: pass reference= to validate "
            "(the CLI reads it from the suite's 'reference' or its --reference flag)",
        )
    if e.column not in reference.schema.names:
        return ctx.result(e, False, detail=_missing(e.column, reference, "reference"))
    kinds = _kind(ctx.table.type_of(e.column)), _kind(reference.type_of(e.column))
    if kinds[0] is None or kinds[0] != kinds[1]:
        return ctx.result(
            e,
            False,
            detail=f"column '{e.column}' has type {ctx.table.type_of(e.column)} (reference: "
            f"{reference.type_of(e.column)}); distribution tests compare numeric, string or "
            "boolean columns of the same kind",
        )
    if e.test == "ks" and kinds[0] != "numeric":
        return ctx.result(
            e, False, detail="ks needs a numeric column; use psi or chi2 for categories"
        )
    if e.test == "ks":
        return _Plan([], lambda _: _ks(e, ctx, reference))
    return _Plan([], lambda _: _binned(e, ctx, reference, kinds[0] or ""))


_MAX_CATEGORIES = 50
_PSI_FLOOR = 1e-4
"""An empty bin counts as this fraction: PSI is infinite when one side has no rows in a bin."""


def _kind(t: pa.DataType | None) -> str | None:
    if t is None:
        return None
    if TYPE_FAMILIES["numeric"](t):
        return "numeric"
    if TYPE_FAMILIES["string"](t) or pa.types.is_boolean(t) or pa.types.is_dictionary(t):
        return "categorical"
    return None


def _values(table: _Table, column: str, sample: int | None = None, seed: int = 0) -> str:
    """A derived table ``(v)`` of the column's non-null, non-NaN values, optionally a seeded
    reservoir sample (bounded memory whatever the table size)."""
    c = quote(column)
    where = f"{c} IS NOT NULL"
    if pa.types.is_floating(table.type_of(column)):
        where += f" AND NOT isnan({c})"
    sql = f"SELECT {c} AS v FROM {table.view} WHERE {where}"
    if sample is not None:
        sql = (
            f"SELECT * FROM ({sql}) USING SAMPLE reservoir({int(sample)} ROWS) "
            f"REPEATABLE ({int(seed)})"
        )
    return f"({sql})"


def _ks(e: Distribution, ctx: _Context, reference: _Table) -> ExpectationResult:
    import numpy as np
    from scipy import stats

    def sample(table: _Table) -> Any:
        sql = (
            f"SELECT CAST(v AS DOUBLE) AS v FROM {_values(table, e.column, e.sample_size, e.seed)}"
        )
        return np.asarray(ctx.con.execute(sql).fetchnumpy()["v"], dtype=float)

    current, expected = sample(ctx.table), sample(reference)
    if not len(current) or not len(expected):
        return ctx.result(e, False, detail=f"column '{e.column}' has no values to compare")
    test = stats.ks_2samp(current, expected)
    p_value, threshold = float(test.pvalue), e.effective_threshold
    observed = {
        "test": "ks",
        "statistic": float(test.statistic),
        "p_value": p_value,
        "threshold": threshold,
        "sample_size": {"current": len(current), "reference": len(expected)},
    }
    ok = p_value >= threshold
    detail = (
        ""
        if ok
        else (
            f"p-value {p_value:.3g} < {threshold:g}: the distribution of '{e.column}' differs from "
            f"the reference (KS statistic {test.statistic:.3f})"
        )
    )
    return ctx.result(e, ok, observed=observed, detail=detail)


def _bins(
    e: Distribution, ctx: _Context, reference: _Table, kind: str
) -> tuple[str, list[Any], list[str]]:
    """A SQL bucket expression over ``v`` (with its parameters) and the bucket labels, both
    taken from the reference: quantile edges for numbers, the most frequent values (plus an
    "other" bucket) for categories and for numbers with few distinct values.

    Edges are exact quantiles of the seeded reservoir sample, not ``approx_quantile``: its
    t-digest answers differ from run to run, and a PSI near its threshold would flap."""
    source = _values(reference, e.column)
    if kind == "numeric":
        distinct = ctx.con.execute(f"SELECT approx_count_distinct(v) FROM {source}").fetchone()
        if distinct and distinct[0] > e.bins:
            levels = ", ".join(repr(i / e.bins) for i in range(1, e.bins))
            sample = _values(reference, e.column, e.sample_size, e.seed)
            row = ctx.con.execute(
                f"SELECT quantile_cont(CAST(v AS DOUBLE), [{levels}]) FROM {sample}"
            ).fetchone()
            edges = sorted({float(x) for x in (row[0] if row and row[0] else [])})
            cases = " ".join(f"WHEN v < ? THEN {i}" for i in range(len(edges)))
            labels = [f"< {edges[0]:.6g}"] + [
                f"[{a:.6g}, {b:.6g})" for a, b in itertools.pairwise(edges)
            ]
            labels.append(f">= {edges[-1]:.6g}")
            return f"CASE {cases} ELSE {len(edges)} END", edges, labels
    top = ctx.con.execute(
        f"SELECT v FROM {source} GROUP BY v ORDER BY count(*) DESC, v LIMIT {_MAX_CATEGORIES}"
    ).fetchall()
    categories = [row[0] for row in top]
    labels = [str(json_value(c, max_text=60)) for c in categories] + ["(other)"]
    cases = " ".join(f"WHEN v = ? THEN {i}" for i in range(len(categories)))
    bucket = f"CASE {cases} ELSE {len(categories)} END" if categories else "0"
    return bucket, categories, labels


def _binned(e: Distribution, ctx: _Context, reference: _Table, kind: str) -> ExpectationResult:
    import numpy as np

    bucket, params, labels = _bins(e, ctx, reference, kind)
    sample = e.sample_size if e.test == "chi2" else None

    def counts(table: _Table) -> Any:
        source = _values(table, e.column, sample, e.seed)
        found = np.zeros(len(labels))
        for index, n in ctx.con.execute(
            f"SELECT {bucket} AS b, count(*) FROM {source} GROUP BY b", params
        ).fetchall():
            found[int(index)] = n
        return found

    current, expected = counts(ctx.table), counts(reference)
    if not current.sum() or not expected.sum():
        return ctx.result(e, False, detail=f"column '{e.column}' has no values to compare")
    cur_share, ref_share = current / current.sum(), expected / expected.sum()
    threshold = e.effective_threshold
    observed: dict[str, Any] = {"test": e.test, "threshold": threshold}
    if e.test == "psi":
        p = np.maximum(ref_share, _PSI_FLOOR)
        q = np.maximum(cur_share, _PSI_FLOOR)
        terms = (q - p) * np.log(q / p)
        psi = float(terms.sum())
        observed["psi"] = psi
        ok = psi <= threshold
        worst = int(np.argmax(terms))
        detail = (
            ""
            if ok
            else (
                f"PSI {psi:.3f} > {threshold:g}: the distribution of '{e.column}' has shifted from "
                f"the reference; most in bin {labels[worst]} ({ref_share[worst]:.1%} -> "
                f"{cur_share[worst]:.1%})"
            )
        )
    else:
        from scipy import stats

        table = np.array([current, expected])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            statistic, p_value = 0.0, 1.0
        else:
            test = stats.chi2_contingency(table)
            statistic, p_value = float(test.statistic), float(test.pvalue)
        observed.update(statistic=statistic, p_value=p_value)
        observed["sample_size"] = {"current": int(current.sum()), "reference": int(expected.sum())}
        ok = p_value >= threshold
        detail = (
            ""
            if ok
            else (
                f"p-value {p_value:.3g} < {threshold:g}: the distribution of '{e.column}' differs "
                f"from the reference (chi-squared {statistic:.1f})"
            )
        )
    observed["bins"] = [
        {"bin": label, "reference": float(r), "current": float(c)}
        for label, r, c in zip(labels, ref_share, cur_share, strict=True)
    ]
    return ctx.result(e, ok, observed=observed, detail=detail)


_PLANNERS: dict[type, Callable[[Any, _Context], _Plan | ExpectationResult]] = {
    ColumnPresent: _plan_column_present,
    ColumnType: _plan_column_type,
    NullFraction: _plan_null_fraction,
    ValueRange: _plan_value_range,
    AllowedValues: _plan_value_set,
    Regex: _plan_value_set,
    Unique: _plan_unique,
    RowCount: _plan_row_count,
    Freshness: _plan_freshness,
    Distribution: _plan_distribution,
}


def _missing(column: str, table: _Table, what: str = "dataset") -> str:
    names = table.schema.names
    shown = ", ".join(names[:20]) + (f", … ({len(names)} in all)" if len(names) > 20 else "")
    return f"column '{column}' is not in the {what}; its columns are: {shown}"


def _could_not_evaluate(e: _Base, ctx: _Context, exc: BaseException) -> ExpectationResult:
    """A value DuckDB cannot compare (say, text bounds on a number column) fails this one
    expectation; the rest of the suite still runs."""
    return ctx.result(e, False, detail=f"could not evaluate: {_first_line(exc)}")


def _scan(ctx: _Context, plans: list[tuple[int, _Plan]]) -> dict[int, Sequence[Any] | Exception]:
    """Every plan's aggregates in one pass over the data; if DuckDB rejects the combined query,
    each plan runs alone so only the culprit fails."""
    wanted = [(i, plan) for i, plan in plans if plan.aggregates]
    answers: dict[int, Sequence[Any] | Exception] = {i: () for i, plan in plans}
    if not wanted:
        return answers

    def run(group: list[tuple[int, _Plan]]) -> Sequence[Any]:
        sql = ", ".join(sql for _, plan in group for sql, _ in plan.aggregates)
        params = [v for _, plan in group for _, ps in plan.aggregates for v in ps]
        row = ctx.con.execute(f"SELECT {sql} FROM {ctx.table.view}", params).fetchone()
        return row or ()

    try:
        row = run(wanted)
    except duckdb.Error:
        for i, plan in wanted:
            try:
                answers[i] = run([(i, plan)])
            except duckdb.Error as exc:
                answers[i] = exc
        return answers
    offset = 0
    for i, plan in wanted:
        answers[i] = row[offset : offset + len(plan.aggregates)]
        offset += len(plan.aggregates)
    return answers


def _evaluate(expectations: Sequence[_Base], ctx: _Context) -> list[ExpectationResult]:
    results: dict[int, ExpectationResult] = {}
    plans: list[tuple[int, _Plan]] = []
    for i, e in enumerate(expectations):
        missing = [c for c in e.column_names() if c not in ctx.table.schema.names]
        if missing and not isinstance(e, ColumnPresent):
            results[i] = ctx.result(e, False, detail=_missing(missing[0], ctx.table))
            continue
        try:
            planned = _PLANNERS[type(e)](e, ctx)
        except duckdb.Error as exc:
            results[i] = _could_not_evaluate(e, ctx, exc)
            continue
        if isinstance(planned, ExpectationResult):
            results[i] = planned
        else:
            plans.append((i, planned))
    answers = _scan(ctx, plans)
    for i, plan in plans:
        answer = answers[i]
        if isinstance(answer, Exception):
            results[i] = _could_not_evaluate(expectations[i], ctx, answer)
            continue
        try:
            results[i] = plan.finish(answer)
        except duckdb.Error as exc:
            results[i] = _could_not_evaluate(expectations[i], ctx, exc)
    return [results[i] for i in range(len(expectations))]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def validate(
    parquet_path: str | os.PathLike[str],
    suite: Suite | str | os.PathLike[str] | Mapping[str, Any],
    *,
    dataset: str = "",
    reference: str | os.PathLike[str] | None = None,
    now: dt.datetime | None = None,
    sample_rows: int = 5,
) -> ValidationReport:
    """Evaluate ``suite`` against one Parquet file, streaming it through DuckDB.

    ``reference`` is the Parquet file distribution checks compare against; ``now`` pins the
    clock for freshness checks. The report fails when any error-severity expectation fails;
    failed warnings are counted but never fail it. Raises NotFound / InvalidInput only for an
    unreadable file or suite, never for what the data holds.
    """
    suite = load_suite(suite)
    started = _now_ms()
    path = Path(parquet_path)
    with _connect() as con:
        table = _Table.register(con, path, "current_data")
        ref = None if reference is None else _Table.register(con, Path(reference), "reference_data")
        count = con.execute(f"SELECT count(*) FROM {table.view}").fetchone()
        ctx = _Context(
            con=con,
            table=table,
            reference=ref,
            row_count=int(count[0]) if count else 0,
            now=now or dt.datetime.now(dt.UTC),
            sample_rows=max(0, sample_rows),
        )
        results = _evaluate(suite.expectations, ctx)
    failed = sum(1 for r in results if not r.success and r.severity == "error")
    warnings = sum(1 for r in results if not r.success and r.severity == "warning")
    return ValidationReport(
        dataset=dataset or path.name,
        suite=suite.name,
        success=failed == 0,
        results=results,
        row_count=ctx.row_count,
        started_ms=started,
        finished_ms=_now_ms(),
        statistics={
            "evaluated": len(results),
            "passed": sum(1 for r in results if r.success),
            "failed": failed,
            "warnings": warnings,
        },
    )


# --- inference --------------------------------------------------------------------------------

_LOW_CARDINALITY = 20
_FAMILY_ORDER = ("integer", "float", "string", "boolean", "timestamp", "date")


@dataclass
class _Facts:
    """What inference needs to know about one column."""

    nulls: int = 0
    min: Any = None
    max: Any = None
    distinct: int | None = None
    exact: bool = False
    """Whether ``distinct`` is an exact count (profiles may carry an estimate)."""


def _family(t: pa.DataType) -> str | None:
    return next((f for f in _FAMILY_ORDER if TYPE_FAMILIES[f](t)), None)


def _null_limit(fraction: float) -> float:
    """No nulls stays no nulls; otherwise the observed fraction plus one point, rounded up to
    whole percent, so ordinary variation between versions does not fail a run."""
    if fraction <= 0:
        return 0.0
    return min(1.0, math.ceil(round((fraction + 0.01) * 100, 9)) / 100)


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _measure(con: duckdb.DuckDBPyConnection, table: _Table) -> tuple[int, dict[str, _Facts]]:
    """Row count, nulls, min/max and approximate distinct counts of every column in one scan."""
    sql = ["count(*)"]
    for f in table.schema:
        c = quote(f.name)
        sql.append(f"count_if({c} IS NULL)")
        if TYPE_FAMILIES["numeric"](f.type):
            valid = f" FILTER (WHERE NOT isnan({c}))" if pa.types.is_floating(f.type) else ""
            sql += [f"min({c}){valid}", f"max({c}){valid}"]
        if _family(f.type) in ("integer", "string"):
            sql.append(f"approx_count_distinct({c})")
    row = con.execute(f"SELECT {', '.join(sql)} FROM {table.view}").fetchone() or ()
    values = iter(row)
    rows = int(next(values))
    facts: dict[str, _Facts] = {}
    for f in table.schema:
        fact = _Facts(nulls=int(next(values)))
        if TYPE_FAMILIES["numeric"](f.type):
            fact.min, fact.max = next(values), next(values)
        if _family(f.type) in ("integer", "string"):
            fact.distinct = int(next(values))
        facts[f.name] = fact
    return rows, facts


def _from_profile(profile: Mapping[str, Any], table: _Table) -> tuple[int, dict[str, _Facts]]:
    rows = int(profile.get("row_count", 0))
    columns = profile.get("columns") or {}
    facts: dict[str, _Facts] = {}
    for name in table.schema.names:
        col = columns.get(name) or {}
        nulls = col.get("nulls")
        if nulls is None:
            nulls = round(float(col.get("null_fraction") or 0) * rows)
        distinct = col.get("distinct")
        facts[name] = _Facts(
            nulls=int(nulls),
            min=col.get("min"),
            max=col.get("max"),
            distinct=int(distinct) if distinct is not None else None,
            exact=not col.get("distinct_approximate", True),
        )
    return rows, facts


def _low_cardinality_values(con: duckdb.DuckDBPyConnection, table: _Table, column: str) -> list:
    c = quote(column)
    rows = con.execute(
        f"SELECT DISTINCT {c} FROM {table.view} WHERE {c} IS NOT NULL ORDER BY 1 "
        f"LIMIT {_LOW_CARDINALITY + 1}"
    ).fetchall()
    return [r[0] for r in rows] if len(rows) <= _LOW_CARDINALITY else []


def _is_unique(
    con: duckdb.DuckDBPyConnection, table: _Table, column: str, fact: _Facts, present: int
) -> bool:
    """Exact distinct count, but only for columns whose estimate says they may be unique:
    an exact count holds every distinct value in a hash table (DuckDB spills it to disk)."""
    if present < 2 or fact.distinct is None or fact.distinct < 0.9 * present:
        return False
    if fact.exact:
        return fact.distinct == present
    row = con.execute(f"SELECT count(DISTINCT {quote(column)}) FROM {table.view}").fetchone()
    return bool(row) and int(row[0]) == present


def _bound(value: Any, t: pa.DataType) -> int | float:
    number = float(value)
    return int(number) if pa.types.is_integer(t) and number.is_integer() else number


def infer_suite(
    parquet_path: str | os.PathLike[str],
    profile: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    reference: str | None = None,
) -> Suite:
    """A starting suite from a reference version, meant to be read and edited.

    Per column: presence, type family, a null-fraction ceiling, the observed min/max range for
    numbers, the value set for text with at most 20 distinct values, uniqueness for integer
    and text keys, and a PSI drift check per numeric column that is not a key; plus the row
    count within ±50 %.
    ``profile`` (from ``tabular.profile_table``) saves the scan it already did; ``reference``
    (``NAME@v``) is recorded in the suite for the drift checks.
    """
    path = Path(parquet_path)
    with _connect() as con:
        table = _Table.register(con, path, "reference_data")
        rows, facts = _from_profile(profile, table) if profile else _measure(con, table)
        checks: list[_Base] = [
            RowCount(min=math.floor(rows * 0.5), max=math.ceil(rows * 1.5)),
        ]
        drift: list[_Base] = []
        for f in table.schema:
            fact, family = facts[f.name], _family(f.type)
            present = rows - fact.nulls
            checks.append(ColumnPresent(column=f.name))
            checks.append(ColumnType(column=f.name, dtype=family or str(f.type)))
            checks.append(
                NullFraction(column=f.name, max=_null_limit(fact.nulls / rows if rows else 0.0))
            )
            if TYPE_FAMILIES["numeric"](f.type) and _finite(fact.min) and _finite(fact.max):
                checks.append(
                    ValueRange(
                        column=f.name, min=_bound(fact.min, f.type), max=_bound(fact.max, f.type)
                    )
                )
            if family == "string" and present and (fact.distinct or 0) <= _LOW_CARDINALITY + 5:
                values = _low_cardinality_values(con, table, f.name)
                if values and len(values) < present:
                    checks.append(AllowedValues(column=f.name, values=values))
            unique = family in ("integer", "string") and _is_unique(
                con, table, f.name, fact, present
            )
            if unique:
                checks.append(Unique(columns=[f.name]))
            if TYPE_FAMILIES["numeric"](f.type) and present and not unique:
                # A unique integer is a key, not a feature: new rows give it new values by design.
                drift.append(Distribution(column=f.name, test="psi"))
    return Suite(name=name or path.stem, reference=reference, expectations=[*checks, *drift])
