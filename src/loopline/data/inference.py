"""Suite inference: a starting suite written from what one version of a dataset holds.

Kept apart from the engine because it answers a different question (what should hold, not
whether it does); it shares only the DuckDB connection and table registration of
:mod:`loopline.data.checks`, and builds the models of :mod:`loopline.data.suites`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from loopline.data.checks import _connect, _Table, quote
from loopline.data.suites import (
    TYPE_FAMILIES,
    AllowedValues,
    ColumnPresent,
    ColumnType,
    Distribution,
    NullFraction,
    RowCount,
    Suite,
    Unique,
    ValueRange,
    _Base,
)

__all__ = ["infer_suite"]


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
