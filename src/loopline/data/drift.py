"""Distribution checks: has a column drifted from a reference version of the dataset?

Three tests, all over DuckDB queries of the two Parquet files: Kolmogorov-Smirnov on seeded
reservoir samples of a numeric column, and the population stability index (PSI) or a
chi-squared test on bins taken from the reference (quantile edges for numbers, the most
frequent values for categories). numpy and scipy are imported only when a test runs, so loading
a suite or the CLI stays fast. Everything here is internal: :mod:`loopline.data.validation`
calls :func:`_plan_distribution` and nothing else.
"""

from __future__ import annotations

import itertools
from typing import Any

import pyarrow as pa

from loopline.data.checks import _Context, _missing, _Plan, _Table, quote
from loopline.data.results import ExpectationResult, json_value
from loopline.data.suites import TYPE_FAMILIES, Distribution

__all__: list[str] = []  # internal: validate() is the way in


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
