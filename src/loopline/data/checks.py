"""How each expectation becomes SQL over one Parquet file registered in DuckDB.

The context every planner receives (connection, table, reference, row count, clock) and the
planners of the row-level, schema, row-count and freshness checks. A planner either answers at
once (schema checks read only the footer) or returns a :class:`_Plan`: aggregates to fold into
the shared scan in :mod:`loopline.data.validation`, and how to judge their values. Distribution
checks compare two tables and live in :mod:`loopline.data.drift`.

User-supplied column names are always quoted as identifiers (:func:`quote`) and values are
always bound as ``?`` parameters: a suite file cannot inject SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.data.results import _MAX_TEXT, ExpectationResult, json_value
from loopline.data.suites import (
    TYPE_FAMILIES,
    AllowedValues,
    ColumnPresent,
    ColumnType,
    Freshness,
    NullFraction,
    Regex,
    RowCount,
    Unique,
    ValueRange,
    _Base,
    _expectation_dict,
)
from loopline.errors import InvalidInput, NotFound

__all__ = ["quote"]


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


def _missing(column: str, table: _Table, what: str = "dataset") -> str:
    names = table.schema.names
    shown = ", ".join(names[:20]) + (f", … ({len(names)} in all)" if len(names) > 20 else "")
    return f"column '{column}' is not in the {what}; its columns are: {shown}"
