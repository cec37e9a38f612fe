"""Expectation suites: each type passing and failing on a small Parquet file, drift, inference,
suite files and reports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopline.data.expectations import (
    AllowedValues,
    ColumnPresent,
    ColumnType,
    Distribution,
    ExpectationResult,
    Freshness,
    NullFraction,
    Regex,
    RowCount,
    Suite,
    Unique,
    ValidationReport,
    ValueRange,
    infer_suite,
    load_suite,
    parse_duration,
    save_suite,
    validate,
)
from loopline.data.reports import report_html, report_json, write_report
from loopline.errors import InvalidInput, NotFound

WEIRD = 'we"ird'
"""A column name with a double quote: it must be quoted as an identifier, never break SQL."""


def write(path: Path, columns: dict[str, Any]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """Six rows; each column holds exactly the flaws the tests below count."""
    return write(
        tmp_path / "small.parquet",
        {
            "id": [1, 2, 3, 4, 5, 2],
            "score": [0.5, 1.5, None, 3.0, 10.0, -1.0],
            "code": ["a", "b", "a", "c", "x", None],
            "email": ["a@x.io", "b@x.io", "bad", None, "c@x.io", "d@x.io"],
            "ts": pa.array([dt.datetime(2024, 1, day) for day in range(1, 7)], pa.timestamp("us")),
            WEIRD: ["ok", "ok", "ok", "<script>alert(1)</script>", "ok", "ok"],
        },
    )


def check(path: Path, *expectations: Any, **kwargs: Any) -> ExpectationResult:
    """The result of one expectation (the report must agree with it)."""
    report = validate(path, Suite(name="t", expectations=list(expectations)), **kwargs)
    assert report.success == all(r.success or r.severity == "warning" for r in report.results)
    return report.results[0]


def ids(result: ExpectationResult) -> list[Any]:
    return [row["id"] for row in result.sample]


class TestColumnChecks:
    def test_column_present_passes_and_a_missing_one_fails_naming_the_columns(self, table):
        assert check(table, ColumnPresent(column=WEIRD)).success
        result = check(table, ColumnPresent(column="nope"))
        assert not result.success
        assert result.detail.startswith("column 'nope' is not in the dataset; its columns are: id")

    @pytest.mark.parametrize("dtype", ["integer", "numeric", "int64"])
    def test_column_type_accepts_a_family_or_the_exact_arrow_type(self, table, dtype):
        assert check(table, ColumnType(column="id", dtype=dtype)).success

    def test_column_type_fails_with_the_observed_type(self, table):
        result = check(table, ColumnType(column="id", dtype="string"))
        assert (result.success, result.observed) == (False, "int64")
        assert result.detail == "column 'id' has type int64, expected string"

    def test_any_expectation_on_a_missing_column_fails_instead_of_raising(self, table):
        result = check(table, NullFraction(column="nope", max=0.5))
        assert not result.success and "column 'nope' is not in the dataset" in result.detail


class TestRowLevelChecks:
    def test_null_fraction_counts_nulls_and_samples_the_null_rows(self, table):
        assert check(table, NullFraction(column="score", max=0.2)).success
        result = check(table, NullFraction(column="score", max=0.1))
        assert not result.success
        assert (result.unexpected_count, result.observed) == (1, pytest.approx(1 / 6))
        assert (ids(result), result.sample_row_numbers) == ([3], [2])
        assert result.sample[0]["ts"] == "2024-01-03T00:00:00"

    def test_value_range_counts_values_outside_and_ignores_nulls(self, table):
        assert check(table, ValueRange(column="score", min=-1, max=10)).success
        result = check(table, ValueRange(column="score", min=0, max=5))
        assert (result.success, result.unexpected_count) == (False, 2)
        assert result.unexpected_fraction == pytest.approx(2 / 6)
        assert (ids(result), result.sample_row_numbers) == ([5, 2], [4, 5])
        assert result.observed == {"min": -1.0, "max": 10.0}
        assert result.detail == "2 values outside [0, 5]"

    def test_value_range_strict_excludes_the_bounds(self, table):
        result = check(table, ValueRange(column="score", min=-1, max=10, strict=True))
        assert (result.unexpected_count, ids(result)) == (2, [5, 2])

    def test_value_range_compares_timestamps_with_iso_bounds(self, table):
        result = check(table, ValueRange(column="ts", min="2024-01-02", max="2024-01-05"))
        assert (result.unexpected_count, ids(result)) == (2, [1, 2])

    def test_a_bound_duckdb_cannot_compare_fails_only_that_expectation(self, table):
        suite = Suite(
            name="t",
            expectations=[ValueRange(column="score", min="abc"), RowCount(min=1)],
        )
        report = validate(table, suite)
        assert report.results[0].detail.startswith("could not evaluate: Conversion Error")
        assert report.results[1].success

    def test_allowed_values_reports_the_unexpected_values_with_counts(self, table):
        assert check(table, AllowedValues(column="code", values=["a", "b", "c", "x"])).success
        result = check(table, AllowedValues(column="code", values=["a", "b", "c"]))
        assert (result.success, result.unexpected_count, ids(result)) == (False, 1, [5])
        assert result.observed == {"unexpected_values": [{"value": "x", "count": 1}]}
        assert result.detail == "1 value not in the allowed set: 'x' (1)"

    def test_regex_must_match_the_whole_value(self, table):
        assert check(table, Regex(column="email", pattern=r"[a-z]+@[a-z]+\.io")).success is False
        result = check(table, Regex(column="email", pattern=r"[a-z]@x\.io"))
        assert (result.unexpected_count, ids(result), result.sample_row_numbers) == (1, [3], [2])
        assert check(table, Regex(column="email", pattern=r"bad|\w@x\.io")).success

    def test_a_column_name_with_a_quote_works_in_every_row_check(self, table):
        results = validate(
            table,
            Suite(
                name="t",
                expectations=[
                    NullFraction(column=WEIRD, max=0),
                    AllowedValues(column=WEIRD, values=["ok"]),
                    Regex(column=WEIRD, pattern="ok"),
                    Unique(columns=[WEIRD]),
                ],
            ),
        ).results
        assert [(r.success, r.unexpected_count) for r in results] == [
            (True, 0),
            (False, 1),
            (False, 1),
            (False, 5),
        ]
        assert results[1].sample[0][WEIRD] == "<script>alert(1)</script>"


class TestTableChecks:
    def test_unique_counts_every_row_of_a_duplicated_key(self, table):
        result = check(table, Unique(columns=["id"]))
        assert (result.success, result.unexpected_count) == (False, 2)
        assert result.observed == {"duplicate_groups": 1, "duplicated_rows": 2}
        assert (ids(result), result.sample_row_numbers) == ([2, 2], [1, 5])

    def test_unique_skips_keys_with_a_null_part_like_sql(self, table):
        """(2, 'b') and (2, NULL) do not collide."""
        assert check(table, Unique(columns=["id", "code"])).success
        assert Unique.model_validate({"column": "id"}).columns == ["id"]

    def test_row_count_range(self, table):
        assert check(table, RowCount(min=6, max=6)).success
        result = check(table, RowCount(max=5))
        assert (result.success, result.observed, result.detail) == (
            False,
            6,
            "6 rows; expected <= 5",
        )

    def test_freshness_measures_the_newest_value_from_an_injected_now(self, table):
        now = dt.datetime(2024, 1, 6, 12, tzinfo=dt.UTC)
        assert check(table, Freshness(column="ts", max_age="24h", now=now)).success
        result = check(table, Freshness(column="ts", max_age="6h", now=now))
        assert not result.success
        assert result.observed["age_seconds"] == 12 * 3600
        assert result.detail == (
            "newest value 2024-01-06T00:00:00+00:00 is 12.0h old; at most 6h is allowed"
        )

    def test_freshness_takes_now_from_validate_and_reads_naive_times_as_utc(self, table):
        late = dt.datetime(2024, 1, 8)
        assert not check(table, Freshness(column="ts", max_age="1d"), now=late).success
        assert check(table, Freshness(column="ts", max_age=3 * 86400), now=late).success

    def test_freshness_on_a_non_temporal_column_fails_clearly(self, table):
        result = check(table, Freshness(column="id", max_age="1d"))
        assert result.detail == "column 'id' has type int64; freshness needs a timestamp or date"

    def test_parse_duration(self):
        assert [parse_duration(v) for v in ("30m", "24h", "7d", "1h30m", "90", 5)] == [
            1800,
            86400,
            604800,
            5400,
            90,
            5,
        ]
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration("soon")


class TestSampleRows:
    def test_a_column_named_file_row_number_is_kept_and_row_numbers_are_left_out(self, tmp_path):
        path = write(tmp_path / "f.parquet", {"file_row_number": [7, 8], "v": [1, 99]})
        result = check(path, ValueRange(column="v", max=10))
        assert (result.sample, result.sample_row_numbers) == ([{"file_row_number": 8, "v": 99}], [])

    def test_sample_rows_zero_counts_without_sampling(self, table):
        result = check(table, ValueRange(column="score", max=5), sample_rows=0)
        assert (result.unexpected_count, result.sample) == (1, [])

    def test_long_text_in_a_sample_is_cut(self, tmp_path):
        path = write(tmp_path / "t.parquet", {"s": ["x" * 500]})
        result = check(path, AllowedValues(column="s", values=["y"]))
        assert result.sample[0]["s"] == "x" * 200 + "…"


class TestSeverity:
    def test_a_failed_warning_is_reported_but_does_not_fail_the_run(self, table):
        suite = Suite(
            name="t",
            expectations=[
                RowCount(max=5, severity="warning"),
                ColumnPresent(column="id"),
            ],
        )
        report = validate(table, suite, dataset="small@1")
        assert report.success and not report.results[0].success
        assert report.statistics == {"evaluated": 2, "passed": 1, "failed": 0, "warnings": 1}
        assert (report.dataset, report.suite, report.row_count) == ("small@1", "t", 6)

    def test_a_failed_error_fails_the_run_and_is_listed_in_failures(self, table):
        suite = Suite(name="t", expectations=[RowCount(max=5), ColumnPresent(column="nope")])
        report = validate(table, suite)
        assert not report.success
        assert [r.name for r in report.failures] == ["row_count", "column_present(nope)"]
        assert report.statistics["failed"] == 2


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A reference and three current versions drawn with fixed seeds: one from the same
    distributions, one with the numbers shifted by half a standard deviation and the category
    mix changed."""
    root = tmp_path_factory.mktemp("drift")
    n = 3000

    def draw(name: str, seed: int, shift: float, mix: list[float]) -> Path:
        rng = np.random.default_rng(seed)
        return write(
            root / f"{name}.parquet",
            {"x": rng.normal(shift, 1.0, n), "c": rng.choice(["a", "b", "c"], n, p=mix)},
        )

    return {
        "reference": draw("reference", 1, 0.0, [0.5, 0.3, 0.2]),
        "same": draw("same", 2, 0.0, [0.5, 0.3, 0.2]),
        "shifted": draw("shifted", 3, 0.5, [0.3, 0.3, 0.4]),
    }


class TestDistribution:
    @pytest.mark.parametrize(
        ("column", "test"), [("x", "ks"), ("x", "psi"), ("x", "chi2"), ("c", "psi"), ("c", "chi2")]
    )
    def test_drift_is_detected_on_a_shifted_sample_and_not_on_a_same_one(
        self, samples, column, test
    ):
        expectation = Distribution(column=column, test=test)
        same = check(samples["same"], expectation, reference=samples["reference"])
        shifted = check(samples["shifted"], expectation, reference=samples["reference"])
        assert (same.success, shifted.success) == (True, False), (same.detail, shifted.observed)
        assert shifted.detail.startswith("PSI " if test == "psi" else "p-value ")

    def test_psi_reports_reference_and_current_shares_per_bin(self, samples):
        result = check(
            samples["shifted"],
            Distribution(column="c", test="psi"),
            reference=samples["reference"],
        )
        bins = {b["bin"]: b for b in result.observed["bins"]}
        assert list(bins) == ["a", "b", "c", "(other)"]
        assert bins["a"]["reference"] == pytest.approx(0.5, abs=0.03)
        assert bins["a"]["current"] == pytest.approx(0.3, abs=0.03)

    def test_without_a_reference_the_check_fails_saying_what_is_missing(self, samples):
        result = check(samples["same"], Distribution(column="x", test="ks"))
        assert not result.success and result.detail.startswith("no reference dataset")

    def test_ks_on_text_fails_clearly(self, samples):
        result = check(
            samples["same"], Distribution(column="c", test="ks"), reference=samples["reference"]
        )
        assert result.detail == "ks needs a numeric column; use psi or chi2 for categories"

    def test_the_same_seed_gives_the_same_p_value(self, samples):
        expectation = Distribution(column="x", test="ks", sample_size=500, seed=7)
        first, second = (
            check(samples["shifted"], expectation, reference=samples["reference"]).observed
            for _ in range(2)
        )
        assert first == second and first["sample_size"] == {"current": 500, "reference": 500}


class TestInferSuite:
    @pytest.fixture
    def reference(self, tmp_path: Path) -> dict[str, Any]:
        rng = np.random.default_rng(5)
        n = 400
        return {
            "id": list(range(n)),
            "amount": rng.normal(100, 10, n),
            "country": rng.choice(["DE", "FR", "NL"], n).tolist(),
            "note": [None if i % 10 == 0 else f"note {i}" for i in range(n)],
        }

    def test_a_good_copy_passes_and_a_corrupted_one_fails_the_right_expectations(
        self, tmp_path, reference
    ):
        ref = write(tmp_path / "ref.parquet", reference)
        suite = infer_suite(ref, name="tx", reference="tx@1")
        kinds = {(e.type, *e.column_names()) for e in suite.expectations}
        assert {
            ("unique", "id"),
            ("allowed_values", "country"),
            ("value_range", "amount"),
            ("distribution", "amount"),
        } <= kinds
        assert ("distribution", "id") not in kinds  # a key, not a feature
        assert ("unique", "amount") not in kinds  # unique floats are chance, not a key
        nulls = {e.column: e.max for e in suite.expectations if isinstance(e, NullFraction)}
        assert nulls == {"id": 0.0, "amount": 0.0, "country": 0.0, "note": 0.11}

        good = write(tmp_path / "good.parquet", reference)
        assert validate(good, suite, reference=ref).success

        bad = dict(reference)
        bad["id"] = [0, *reference["id"][:-1]]  # a duplicated key
        bad["amount"] = [v + 8 for v in reference["amount"]]  # shifted, and beyond the max
        bad["country"] = ["XX", *reference["country"][1:]]
        corrupt = write(tmp_path / "bad.parquet", bad)
        report = validate(corrupt, suite, reference=ref)
        assert sorted(r.name for r in report.failures) == [
            "allowed_values(country)",
            "distribution(amount, psi)",
            "unique(id)",
            "value_range(amount)",
        ]

    def test_a_profile_saves_the_scan_and_gives_the_same_null_ceilings(self, tmp_path, reference):
        ref = write(tmp_path / "ref.parquet", reference)
        profile = {
            "row_count": 400,
            "columns": {
                "id": {
                    "nulls": 0,
                    "distinct": 400,
                    "distinct_approximate": False,
                    "min": 0,
                    "max": 399,
                },
                "amount": {"nulls": 0, "min": 70.0, "max": 130.0},
                "country": {"nulls": 0, "distinct": 3},
                "note": {"null_fraction": 0.1, "distinct": 360},
            },
        }
        suite = infer_suite(ref, profile)
        assert suite.name == "ref"
        ranges = {e.column: (e.min, e.max) for e in suite.expectations if isinstance(e, ValueRange)}
        assert ranges == {"id": (0, 399), "amount": (70.0, 130.0)}
        assert next(e for e in suite.expectations if isinstance(e, RowCount)).model_dump(
            include={"min", "max"}
        ) == {"min": 200, "max": 600}


class TestSuiteFiles:
    def test_yaml_round_trip_keeps_every_expectation(self, tmp_path):
        suite = Suite(
            name="transactions",
            reference="transactions@3",
            expectations=[
                ColumnType(column="id", dtype="integer"),
                NullFraction(column=WEIRD, max=0.25, name="few nulls", severity="warning"),
                ValueRange(column="amount", min=0, strict=True),
                AllowedValues(column="code", values=["a", 1, True]),
                Regex(column="email", pattern=r"[^@]+@[^@]+"),
                Unique(columns=["id", "day"]),
                RowCount(min=10),
                Freshness(column="ts", max_age="7d", now=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
                Distribution(column="amount", test="ks", threshold=0.01),
            ],
        )
        path = tmp_path / "suite.yaml"
        save_suite(suite, path)
        assert load_suite(path) == suite
        assert "  max: 0.25\n  name: few nulls\n  severity: warning\n" in path.read_text()
        assert "strict: false" not in path.read_text()  # defaults are left out

    def test_a_python_file_may_define_the_suite_as_a_list(self, tmp_path):
        path = tmp_path / "checks.py"
        path.write_text('suite = [{"type": "row_count", "min": 1}]\n', encoding="utf-8")
        assert load_suite(path) == Suite(name="checks", expectations=[RowCount(min=1)])

    @pytest.mark.parametrize(
        ("expectation", "message"),
        [
            (
                {"type": "null_fraction", "column": "a", "max": 2},
                r"expectations\[3\]\.max: must be <= 1",
            ),
            ({"type": "nope"}, r"expectations\[3\]: unknown expectation type 'nope'; expected one"),
            ({"column": "a"}, r"expectations\[3\]: missing 'type'"),
            ({"type": "null_fraction", "max": 0.1}, r"expectations\[3\]\.column: required"),
            ({"type": "row_count", "min": 1, "mni": 2}, r"expectations\[3\]\.mni: unknown field"),
            ({"type": "row_count"}, r"expectations\[3\]: give min, max or both"),
            ({"type": "freshness", "column": "t", "max_age": "soon"}, r"\[3\]\.max_age: 'soon' is"),
            ({"type": "column_type", "column": "a", "dtype": "int"}, r"\[3\]\.dtype: unknown type"),
            (
                {"type": "regex", "column": "a", "pattern": "(a)\\1"},
                r"\[3\]\.pattern: not supported by DuckDB",
            ),
            ({"type": "regex", "column": "a", "pattern": "("}, r"\[3\]\.pattern: invalid regular"),
            (
                {"type": "distribution", "column": "a", "test": "t"},
                r"\[3\]\.test: must be 'ks', 'psi' or 'chi2'",
            ),
        ],
    )
    def test_errors_name_the_expectation_index_and_field(self, tmp_path, expectation, message):
        path = tmp_path / "suite.yaml"
        fine = {"type": "row_count", "min": 1}
        save_text = json.dumps({"name": "s", "expectations": [fine, fine, fine, expectation]})
        path.write_text(save_text, encoding="utf-8")  # JSON is YAML
        with pytest.raises(InvalidInput, match=message):
            load_suite(path)

    def test_a_missing_file_is_not_found_and_bad_yaml_is_invalid(self, tmp_path):
        with pytest.raises(NotFound, match="suite file"):
            load_suite(tmp_path / "none.yaml")
        (tmp_path / "bad.yaml").write_text("name: [", encoding="utf-8")
        with pytest.raises(InvalidInput, match="is not valid YAML"):
            load_suite(tmp_path / "bad.yaml")


class TestReports:
    @pytest.fixture
    def report(self, table) -> ValidationReport:
        suite = Suite(
            name="<b>suite</b>",
            expectations=[
                AllowedValues(column=WEIRD, values=["ok"]),
                RowCount(min=1),
                NullFraction(column="score", max=0, severity="warning"),
            ],
        )
        return validate(table, suite, dataset="small@2")

    def test_html_escapes_every_data_value(self, report):
        html = report_html(report)
        assert "<script>" not in html and "<b>suite" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "we&#34;ird" in html  # the column header
        assert 'id="failure-0"' in html and 'id="failure-2"' in html

    def test_json_names_each_failure_with_counts_and_sample_rows(self, report):
        data = json.loads(report_json(report))
        assert (data["dataset"], data["success"], data["statistics"]["warnings"]) == (
            "small@2",
            False,
            1,
        )
        failed = data["results"][0]
        assert (failed["name"], failed["unexpected_count"]) == (f"allowed_values({WEIRD})", 1)
        assert failed["sample"][0]["id"] == 4 and failed["sample_row_numbers"] == [3]

    def test_json_is_strict_even_with_nan_in_a_sample(self, tmp_path):
        path = write(tmp_path / "nan.parquet", {"v": [1.0, float("nan")]})
        report = validate(path, Suite(name="s", expectations=[ValueRange(column="v", max=2)]))
        text = report_json(report)
        assert json.loads(text)["results"][0]["sample"] == [{"v": "NaN"}]

    def test_write_report_picks_the_format_by_suffix(self, report, tmp_path):
        assert json.loads(write_report(report, tmp_path / "out" / "r.json").read_text())
        assert write_report(report, tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
