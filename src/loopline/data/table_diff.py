"""What changed between two versions of a table: schema, row count, statistics and rows.

Statistics are compared from the two profiles (stored ones when given, so nothing is scanned
twice); with a key, rows added, removed and changed are found by DuckDB anti-joins and one join
over the two Parquet files, so neither table is loaded into memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loopline.data.duck import _Column, _columns, _duckdb, _json_safe, read_schema
from loopline.data.profiling import profile_table
from loopline.errors import InvalidInput

__all__ = ["diff_tables"]


_COMPARED_STATS = (
    "count",
    "nulls",
    "null_fraction",
    "distinct",
    "min",
    "max",
    "mean",
    "std",
    "min_length",
    "max_length",
    "infinite",
)


def diff_tables(
    old: Path,
    new: Path,
    *,
    old_profile: dict[str, Any] | None = None,
    new_profile: dict[str, Any] | None = None,
    key: Sequence[str] | None = None,
    sample: int = 5,
) -> dict[str, Any]:
    """What changed from table ``old`` to ``new``: schema, row count, per-column statistics and,
    with ``key``, which rows were added, removed or changed (DuckDB anti-joins and one join over
    the two files; NULL keys match NULL keys). Stored profiles can be passed to skip
    re-profiling. Raises InvalidInput if a key column is missing or a key is not unique."""
    old_schema = {c["name"]: c["type"] for c in read_schema(old)}
    new_schema = {c["name"]: c["type"] for c in read_schema(new)}
    old_profile = old_profile if old_profile is not None else profile_table(old)
    new_profile = new_profile if new_profile is not None else profile_table(new)
    result: dict[str, Any] = {
        "schema": {
            "added": [n for n in new_schema if n not in old_schema],
            "removed": [n for n in old_schema if n not in new_schema],
            "type_changed": [
                {"name": n, "old": old_schema[n], "new": t}
                for n, t in new_schema.items()
                if n in old_schema and old_schema[n] != t
            ],
        },
        "row_count": {
            "old": old_profile["row_count"],
            "new": new_profile["row_count"],
            "change": new_profile["row_count"] - old_profile["row_count"],
        },
    }
    if key:
        result["rows"] = _diff_rows(Path(old), Path(new), list(key), sample)
    columns: dict[str, Any] = {}
    for name in new_schema:
        if name in old_schema:
            before, after = (
                old_profile["columns"].get(name, {}),
                new_profile["columns"].get(name, {}),
            )
            shifts = _stat_shifts(before, after)
            if shifts:
                columns[name] = shifts
    result["columns"] = columns
    return _json_safe(result)


def _changed(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        # Parallel sums differ in the last bits from run to run; that is not a change.
        return not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a != b


def _shift(a: Any, b: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"old": a, "new": b}
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        out["change"] = b - a
    return out


def _stat_shifts(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    shifts: dict[str, Any] = {}
    for stat in _COMPARED_STATS:
        if (stat in old or stat in new) and _changed(old.get(stat), new.get(stat)):
            shifts[stat] = _shift(old.get(stat), new.get(stat))
    oq, nq = old.get("quantiles") or {}, new.get("quantiles") or {}
    quantiles = {q: _shift(oq.get(q), nq.get(q)) for q in nq if _changed(oq.get(q), nq.get(q))}
    if quantiles:
        shifts["quantiles"] = quantiles
    if [t["value"] for t in old.get("top", [])] != [t["value"] for t in new.get("top", [])]:
        shifts["top"] = {"old": old.get("top"), "new": new.get("top")}
    return shifts


def _cast_for(a: _Column, b: _Column) -> str:
    """How a column of the old file compares with its namesake in the new one: as it is when
    the types agree, as DOUBLE when both are numeric, else as text (so no cast can fail)."""
    if a.field.type == b.field.type:
        return ""
    return "::DOUBLE" if {a.kind, b.kind} <= {"numeric", "float"} else "::VARCHAR"


def _match(pairs: Sequence[tuple[_Column, _Column]], left: str, right: str) -> str:
    """SQL: every pair's values are equal, NULL matching NULL, between aliases left and right."""
    terms = []
    for a, b in pairs:
        cast = _cast_for(a, b)
        terms.append(f"{left}.{a.sql}{cast} IS NOT DISTINCT FROM {right}.{b.sql}{cast}")
    return " AND ".join(terms) or "TRUE"


def _diff_rows(old: Path, new: Path, key: list[str], sample: int) -> dict[str, Any]:
    with _duckdb() as con:
        before = {c.name: c for c in _columns(con, old)}
        after = {c.name: c for c in _columns(con, new)}
        missing = [
            f"{k!r} is not in the {'old' if k not in before else 'new'} table"
            for k in key
            if k not in before or k not in after
        ]
        if missing:
            raise InvalidInput(f"key {key}: {'; '.join(missing)}")
        _check_unique(con, old, [before[k] for k in key], key)
        _check_unique(con, new, [after[k] for k in key], key)
        keys = [(before[k], after[k]) for k in key]
        added, sample_added = _unmatched(con, new, after, old, [(b, a) for a, b in keys], sample)
        removed, sample_removed = _unmatched(con, old, before, new, keys, sample)
        changed = _changed_rows(con, old, new, before, after, keys, sample)
    return {
        "key": key,
        "added": added,
        "removed": removed,
        **changed,
        "sample_added": sample_added,
        "sample_removed": sample_removed,
    }


def _check_unique(con: Any, path: Path, cols: list[_Column], key: list[str]) -> None:
    select = ", ".join(f"{c.sql} AS k{i}" for i, c in enumerate(cols))
    row = con.execute(
        f"SELECT {select}, count(*) AS n FROM read_parquet(?) GROUP BY ALL "
        "HAVING count(*) > 1 ORDER BY n DESC LIMIT 1",
        [str(path)],
    ).fetchone()
    if row is not None:
        value = dict(zip(key, _json_safe(list(row[:-1])), strict=True))
        raise InvalidInput(
            f"key ({', '.join(key)}) does not identify rows in {path}: {value} appears "
            f"{row[-1]} times; compare by key columns whose values are unique"
        )


def _unmatched(
    con: Any,
    path: Path,
    cols: dict[str, _Column],
    other: Path,
    keys: list[tuple[_Column, _Column]],
    sample: int,
) -> tuple[int, list[dict[str, Any]]]:
    """Rows of ``path`` whose key is not in ``other`` (an anti-join): their count and the first
    ``sample`` of them in key order."""
    source = f"FROM read_parquet(?) t ANTI JOIN read_parquet(?) u ON {_match(keys, 't', 'u')}"
    params = [str(path), str(other)]
    count = con.execute(f"SELECT count(*) {source}", params).fetchone()[0]
    rows: list[dict[str, Any]] = []
    if count and sample > 0:
        order = ", ".join(f"t.{a.sql}" for a, _ in keys)
        fetched = con.execute(f"SELECT t.* {source} ORDER BY {order} LIMIT ?", [*params, sample])
        rows = [dict(zip(cols, r, strict=True)) for r in fetched.fetchall()]
    return count, rows


def _changed_rows(
    con: Any,
    old: Path,
    new: Path,
    before: dict[str, _Column],
    after: dict[str, _Column],
    keys: list[tuple[_Column, _Column]],
    sample: int,
) -> dict[str, Any]:
    """Rows whose key is in both tables and whose other shared columns differ, in one join."""
    key_names = {a.name for a, _ in keys}
    shared = [(before[n], after[n]) for n in after if n in before and n not in key_names]
    flags = [
        f"o.{a.sql}{_cast_for(a, b)} IS DISTINCT FROM n.{b.sql}{_cast_for(a, b)} AS d{i}"
        for i, (a, b) in enumerate(shared)
    ]
    key_cols = [f"n.{b.sql} AS k{i}" for i, (_, b) in enumerate(keys)]
    any_diff = " OR ".join(f"d{i}" for i in range(len(shared))) or "FALSE"
    joined = (
        f"SELECT {', '.join([*key_cols, *flags, 'TRUE AS __one'])} FROM read_parquet(?) o "
        f"JOIN read_parquet(?) n ON {_match(keys, 'o', 'n')}"
    )
    params = [str(old), str(new)]
    counts = ", ".join(
        ["count(*) FILTER (WHERE " + any_diff + ")"]
        + [f"count(*) FILTER (WHERE d{i})" for i in range(len(shared))]
    )
    row = con.execute(f"SELECT {counts} FROM ({joined})", params).fetchone()
    by_column = {a.name: n for (a, _), n in zip(shared, row[1:], strict=True) if n}
    samples: list[dict[str, Any]] = []
    if row[0] and sample > 0:
        order = ", ".join(f"k{i}" for i in range(len(keys)))
        flag_cols = ", ".join(f"d{i}" for i in range(len(shared)))
        fetched = con.execute(
            f"SELECT {order}, {flag_cols} FROM ({joined}) WHERE {any_diff} "
            f"ORDER BY {order} LIMIT ?",
            [*params, sample],
        ).fetchall()
        for r in fetched:
            samples.append(
                {
                    "key": dict(zip([b.name for _, b in keys], r[: len(keys)], strict=True)),
                    "columns": [
                        a.name for (a, _), d in zip(shared, r[len(keys) :], strict=True) if d
                    ],
                }
            )
    return {"changed": row[0], "changed_by_column": by_column, "sample_changed": samples}
