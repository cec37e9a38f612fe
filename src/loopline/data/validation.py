"""The validation engine: evaluates a suite as DuckDB queries over one Parquet file.

Every expectation becomes SQL over only the columns it names, so a dataset of any size streams
through DuckDB in row groups and is never loaded into memory. Row-level checks (nulls, ranges,
allowed values, regexes), freshness and the row count are folded into one aggregate query, so
a suite costs one scan plus one small query per failure (its sample rows) and per uniqueness or
distribution check.

A problem with the data (a missing column, a value that cannot be compared) fails that one
expectation with a clear ``detail``; only a malformed suite or an unreadable file raises. The
planners live in :mod:`loopline.data.checks` and :mod:`loopline.data.drift`; this module
dispatches to them, runs the shared scan and assembles the report.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from loopline.data.checks import (
    _connect,
    _Context,
    _first_line,
    _missing,
    _Plan,
    _plan_column_present,
    _plan_column_type,
    _plan_freshness,
    _plan_null_fraction,
    _plan_row_count,
    _plan_unique,
    _plan_value_range,
    _plan_value_set,
    _Table,
)
from loopline.data.drift import _plan_distribution
from loopline.data.results import ExpectationResult, ValidationReport
from loopline.data.suites import (
    AllowedValues,
    ColumnPresent,
    ColumnType,
    Distribution,
    Freshness,
    NullFraction,
    Regex,
    RowCount,
    Suite,
    Unique,
    ValueRange,
    _Base,
    load_suite,
)

__all__ = ["validate"]


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
