"""Tables as canonical Parquet: conversion, schema, profile and diff (loopline.data.tabular)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopline.data.tabular import (
    QUANTILES,
    MalformedRow,
    diff_tables,
    profile_table,
    read_schema,
    write_parquet,
)
from loopline.errors import InvalidInput


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "x": [0.5, 1.5, None, 3.5, 4.5],
            "city": ["Oslo", "Lima", "Oslo", None, "Pune"],
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", None, "2024-03-01", "2024-04-01"]),
        }
    )


def _table(tmp_path: Path, name: str, data: object) -> Path:
    target = tmp_path / f"{name}.parquet"
    write_parquet(data, target)
    return target


class TestCanonicalBytes:
    def test_the_same_dataframe_written_twice_gives_identical_bytes(self, tmp_path: Path) -> None:
        """De-duplication relies on it: equal content, equal file."""
        a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
        write_parquet(_frame(), a)
        write_parquet(_frame(), b)
        assert a.read_bytes() == b.read_bytes()

    def test_input_chunking_and_origin_do_not_change_the_bytes(self, tmp_path: Path) -> None:
        """A DataFrame, its Arrow table cut in odd chunks, and the stored file read back all
        give the same bytes: row groups are re-cut to ``batch_rows`` and metadata dropped."""
        df = pd.DataFrame({"n": np.arange(1000), "s": [f"v{i % 7}" for i in range(1000)]})
        table = pa.Table.from_pandas(df, preserve_index=False)
        chunked = pa.Table.from_batches(table.to_batches(max_chunksize=37))
        paths = [tmp_path / f"{i}.parquet" for i in range(4)]
        write_parquet(df, paths[0], batch_rows=100)
        write_parquet(chunked, paths[1], batch_rows=100)
        write_parquet(paths[0], paths[2], batch_rows=100)
        stream = pa.RecordBatchReader.from_batches(table.schema, chunked.to_batches())
        write_parquet(stream, paths[3], batch_rows=100)
        assert len({p.read_bytes() for p in paths}) == 1
        meta = pq.ParquetFile(paths[0]).metadata
        assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [100] * 10

    def test_no_schema_metadata_and_64_bit_offsets_become_plain_types(self, tmp_path: Path) -> None:
        """pandas' metadata block (library versions, index) is not content, nor is the choice
        of large_string over string."""
        df = pd.DataFrame({"s": pd.array(["a", "b"], dtype="string[pyarrow]")})
        path = _table(tmp_path, "t", df)
        assert pq.read_schema(path).metadata is None
        assert read_schema(path) == [{"name": "s", "type": "string", "nullable": True}]

    def test_a_range_index_is_dropped_and_a_labelled_index_kept_as_columns(
        self, tmp_path: Path
    ) -> None:
        """Row positions are not data; labels (here dates named 'day') are."""
        plain = _table(tmp_path, "plain", pd.DataFrame({"v": [1, 2]}))
        labelled = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["2024-01-01", "2024-01-02"]))
        labelled.index.name = "day"
        named = _table(tmp_path, "named", labelled)
        assert [c["name"] for c in read_schema(plain)] == ["v"]
        assert [c["name"] for c in read_schema(named)] == ["day", "v"]

    def test_a_dataframe_and_its_csv_may_differ_in_types(self, tmp_path: Path) -> None:
        """Documented, not hidden: CSV timestamps are inferred in seconds, pandas keeps its own
        unit, so the same data from the two sources may be stored as two versions."""
        csv = tmp_path / "t.csv"
        csv.write_text("id,x,when\n1,0.5,2024-01-01 10:00:00\n")
        from_csv = write_parquet(csv, tmp_path / "c.parquet").schema
        assert {c["name"]: c["type"] for c in from_csv} == {
            "id": "int64",
            "x": "double",
            "when": "timestamp[s]",
        }
        df = pd.read_csv(csv, parse_dates=["when"])
        from_df = write_parquet(df, tmp_path / "d.parquet").schema
        assert from_df[2]["type"] != "timestamp[s]"  # pandas' unit: ns (pandas 2) or us (3)
        assert (tmp_path / "c.parquet").read_bytes() != (tmp_path / "d.parquet").read_bytes()


class TestWriteParquet:
    def test_reports_schema_and_row_count(self, tmp_path: Path) -> None:
        info = write_parquet(_frame(), tmp_path / "t.parquet")
        assert info.row_count == 5 and info.malformed == [] and info.malformed_count == 0
        assert [(c["name"], c["type"]) for c in info.schema] == [
            ("id", "int64"),
            ("x", "double"),
            ("city", "string"),
            ("when", "timestamp[us]"),
        ]

    def test_malformed_csv_rows_are_reported_with_line_numbers_and_skipped(
        self, tmp_path: Path
    ) -> None:
        """Lines 3 and 7 have the wrong number of fields; every other row is stored."""
        csv = tmp_path / "t.csv"
        csv.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11\n12,13,14\n15,16,17,18,19\n20,21,22\n")
        info = write_parquet(csv, tmp_path / "t.parquet")
        assert info.malformed == [
            MalformedRow(3, "expected 3 columns, got 2", "4,5"),
            MalformedRow(7, "expected 3 columns, got 5", "15,16,17,18,19"),
        ]
        assert info.row_count == 5
        assert pq.read_table(tmp_path / "t.parquet")["a"].to_pylist() == [1, 6, 9, 12, 20]

    def test_line_numbers_count_blank_and_skipped_lines_in_gzipped_csv(
        self, tmp_path: Path
    ) -> None:
        """Arrow's row numbers skip empty lines; the reported number is the file's line."""
        csv = tmp_path / "t.csv.gz"
        csv.write_bytes(gzip.compress(b"# comment\na,b\n1,2\n\n\n3\n4,5\n"))
        info = write_parquet(csv, tmp_path / "t.parquet", csv_options={"skip_rows": 1})
        assert [m.line for m in info.malformed] == [6]
        assert info.row_count == 2

    def test_only_the_first_malformed_rows_are_kept_but_all_are_counted(
        self, tmp_path: Path
    ) -> None:
        csv = tmp_path / "t.csv"
        csv.write_text("a,b\n" + "1\n" * 20 + "1,2\n" + "x" * 600 + "\n")
        info = write_parquet(csv, tmp_path / "t.parquet", max_malformed=3)
        assert info.malformed_count == 21 and len(info.malformed) == 3
        info = write_parquet(csv, tmp_path / "t.parquet")
        assert len(info.malformed[-1].text) == 500 and info.malformed[-1].line == 23

    def test_a_later_value_the_inferred_type_cannot_hold_widens_the_column(
        self, tmp_path: Path
    ) -> None:
        """Types are inferred from the first block; a later float in an int column makes it
        double, a later word makes it string, and no row is lost."""
        csv = tmp_path / "t.csv"
        rows = [f"{i},{i}" for i in range(200)] + ["2.5,word"]
        csv.write_text("n,m\n" + "\n".join(rows) + "\n")
        info = write_parquet(csv, tmp_path / "t.parquet", csv_options={"block_size": 256})
        assert [c["type"] for c in info.schema] == ["double", "string"]
        assert info.row_count == 201
        assert pq.read_table(tmp_path / "t.parquet")["m"][-1].as_py() == "word"

    def test_a_declared_type_that_does_not_fit_names_column_and_value(self, tmp_path: Path) -> None:
        csv = tmp_path / "t.csv"
        csv.write_text("n\n1\nlots\n")
        with pytest.raises(InvalidInput, match=r"column 'n' is int64 but holds 'lots' in row 3"):
            write_parquet(csv, tmp_path / "t.parquet", csv_options={"column_types": {"n": "int64"}})

    def test_tsv_and_csv_options(self, tmp_path: Path) -> None:
        tsv = tmp_path / "t.tsv"
        tsv.write_text("a\tb\n1\tNA\n")
        info = write_parquet(tsv, tmp_path / "t.parquet", csv_options={"null_values": ["NA"]})
        assert pq.read_table(tmp_path / "t.parquet").to_pylist() == [{"a": 1, "b": None}]
        assert info.row_count == 1

    @pytest.mark.parametrize(
        ("source", "message"),
        [
            ({"a": [1]}, r"cannot store a builtins\.dict as a table"),
            (Path("missing.csv"), r"missing\.csv does not exist"),
        ],
    )
    def test_unsupported_sources_raise_invalid_input(
        self, tmp_path: Path, source: object, message: str
    ) -> None:
        with pytest.raises(InvalidInput, match=message):
            write_parquet(source, tmp_path / "t.parquet")

    def test_bad_files_and_options_raise_invalid_input_and_leave_nothing(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "t.json").write_text("{}")
        (tmp_path / "empty.csv").write_text("")
        (tmp_path / "ok.csv").write_text("a\n1\n")
        target = tmp_path / "out" / "t.parquet"
        target.parent.mkdir()
        cases = [
            (tmp_path / "t.json", {}, r"unsupported table file type \.json"),
            (tmp_path / "empty.csv", {}, r"Empty CSV file"),
            (tmp_path / "ok.csv", {"bogus": 1}, r"unknown csv option 'bogus'"),
            (tmp_path / "t.json", {"bogus": 1}, r"unsupported table file type"),
        ]
        for source, options, message in cases:
            with pytest.raises(InvalidInput, match=message):
                write_parquet(source, target, csv_options=options)
        assert list(target.parent.iterdir()) == []

    def test_any_arrow_stream_is_accepted(self, tmp_path: Path) -> None:
        """polars and other libraries hand over data through ``__arrow_c_stream__``."""

        class Stream:
            def __arrow_c_stream__(self, requested_schema: object = None) -> object:
                return pa.table({"a": [1, 2]}).__arrow_c_stream__(requested_schema)

        assert write_parquet(Stream(), tmp_path / "t.parquet").row_count == 2

    def test_a_column_arrow_cannot_type_is_invalid_input(self, tmp_path: Path) -> None:
        df = pd.DataFrame({"mixed": [1, "one", 2.5]})
        with pytest.raises(InvalidInput, match="cannot convert the DataFrame"):
            write_parquet(df, tmp_path / "t.parquet")

    def test_duplicate_column_names_are_refused(self, tmp_path: Path) -> None:
        table = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"])
        with pytest.raises(InvalidInput, match="repeated: x"):
            write_parquet(table, tmp_path / "t.parquet")

    def test_an_empty_table_keeps_its_schema(self, tmp_path: Path) -> None:
        path = _table(tmp_path, "t", _frame().iloc[:0])
        assert pq.read_table(path).num_rows == 0
        assert [c["name"] for c in read_schema(path)] == ["id", "x", "city", "when"]


class TestReadSchema:
    def test_a_file_that_is_not_parquet_is_invalid_input(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.parquet"
        bad.write_text("nope")
        with pytest.raises(InvalidInput, match=r"bad\.parquet"):
            read_schema(bad)


class TestProfileTable:
    def test_numeric_statistics_are_exact_on_a_small_table(self, tmp_path: Path) -> None:
        values = [float(v) for v in range(1, 11)]
        path = _table(tmp_path, "t", pd.DataFrame({"v": [*values, None]}))
        profile = profile_table(path, bins=4)
        col = profile["columns"]["v"]
        assert profile["row_count"] == 11
        assert (col["count"], col["nulls"], col["distinct"]) == (10, 1, 10)
        assert col["null_fraction"] == pytest.approx(1 / 11)
        assert (col["min"], col["max"], col["mean"]) == (1.0, 10.0, 5.5)
        assert col["std"] == pytest.approx(float(np.std(values, ddof=1)))
        assert col["quantiles"] == pytest.approx(
            {str(q): float(np.quantile(values, q)) for q in QUANTILES}
        )
        assert not col["distinct_approximate"] and not col["quantiles_approximate"]
        assert col["histogram"] == {"edges": [1.0, 3.25, 5.5, 7.75, 10.0], "counts": [3, 2, 2, 3]}
        counts, _ = np.histogram(values, bins=4)
        assert col["histogram"]["counts"] == counts.tolist()

    def test_text_columns_have_top_values_and_lengths(self, tmp_path: Path) -> None:
        """Ties are broken by value so a profile never depends on thread timing."""
        city = ["Oslo", "Lima", "Oslo", None, "Pune", "Lima", "Oslo", "Rome"]
        path = _table(tmp_path, "t", pd.DataFrame({"city": city}))
        col = profile_table(path, top_k=3)["columns"]["city"]
        assert col["top"] == [
            {"value": "Oslo", "count": 3},
            {"value": "Lima", "count": 2},
            {"value": "Pune", "count": 1},
        ]
        assert (col["count"], col["nulls"], col["distinct"]) == (7, 1, 4)
        assert (col["min_length"], col["max_length"]) == (4, 4)
        assert "mean" not in col and "histogram" not in col

    def test_categoricals_profile_like_strings(self, tmp_path: Path) -> None:
        df = pd.DataFrame({"c": pd.Categorical(["b", "a", "b"])})
        col = profile_table(_table(tmp_path, "t", df))["columns"]["c"]
        assert col["type"].startswith("dictionary<values=string")
        assert col["top"] == [{"value": "b", "count": 2}, {"value": "a", "count": 1}]

    def test_nan_is_missing_and_infinity_is_counted_but_kept_out_of_moments(
        self, tmp_path: Path
    ) -> None:
        path = _table(tmp_path, "t", pd.DataFrame({"x": [1.0, math.nan, math.inf, 3.0, None]}))
        col = profile_table(path, bins=2)["columns"]["x"]
        assert (col["count"], col["nulls"], col["infinite"], col["distinct"]) == (3, 2, 1, 3)
        assert (col["min"], col["max"], col["mean"]) == (1.0, 3.0, 2.0)
        assert sum(col["histogram"]["counts"]) == col["count"] - col["infinite"]
        json.dumps(col, allow_nan=False)

    def test_bool_temporal_and_decimal_columns(self, tmp_path: Path) -> None:
        utc = dt.UTC
        table = pa.table(
            {
                "flag": [True, False, True, None],
                "day": [dt.date(2024, 3, 1), dt.date(2024, 1, 1), None, dt.date(2024, 2, 1)],
                "at": pa.array(
                    [
                        dt.datetime(2024, 1, 1, 12, tzinfo=utc),
                        None,
                        None,
                        dt.datetime(2024, 1, 2, tzinfo=utc),
                    ],
                    pa.timestamp("ms", tz="Europe/Oslo"),
                ),
                "price": pa.array(
                    [Decimal("1.50"), Decimal("2.50"), None, None], pa.decimal128(6, 2)
                ),
            }
        )
        cols = profile_table(_table(tmp_path, "t", table))["columns"]
        assert cols["flag"]["top"] == [
            {"value": "true", "count": 2},
            {"value": "false", "count": 1},
        ]
        assert (cols["day"]["min"], cols["day"]["max"]) == ("2024-01-01", "2024-03-01")
        assert cols["at"]["type"] == "timestamp[ms, tz=Europe/Oslo]"
        assert (cols["at"]["min"], cols["at"]["max"]) == (
            "2024-01-01T12:00:00+00:00",
            "2024-01-02T00:00:00+00:00",
        )
        assert (cols["price"]["mean"], cols["price"]["count"]) == (2.0, 2)

    def test_column_names_with_quotes_spaces_and_case_twins(self, tmp_path: Path) -> None:
        """Names are quoted, never spliced; DuckDB renames 'a' beside 'A', we map them back."""
        df = pd.DataFrame({'we"ird col': [1, 2], "A": [1, 1], "a": [5, 7], "select": ["x", "y"]})
        cols = profile_table(_table(tmp_path, "t", df))["columns"]
        assert list(cols) == ['we"ird col', "A", "a", "select"]
        assert cols['we"ird col']["mean"] == 1.5
        assert (cols["A"]["mean"], cols["a"]["mean"]) == (1.0, 6.0)

    def test_a_constant_column_gets_numpys_unit_wide_histogram(self, tmp_path: Path) -> None:
        col = profile_table(_table(tmp_path, "t", pd.DataFrame({"k": [7, 7, 7]})), bins=2)
        assert col["columns"]["k"]["histogram"] == {"edges": [6.5, 7.0, 7.5], "counts": [0, 3]}

    def test_large_tables_get_flagged_approximations_that_are_close_and_repeatable(
        self, tmp_path: Path
    ) -> None:
        """Above the thresholds distinct is HyperLogLog and quantiles come from a fixed sample:
        both flagged, both near the truth, and the same on every run."""
        n = 120_000
        values = np.random.default_rng(7).normal(size=n)
        path = _table(tmp_path, "t", pd.DataFrame({"id": np.arange(n), "v": values}))
        first = profile_table(path, quantile_sample_rows=20_000)
        ids, v = first["columns"]["id"], first["columns"]["v"]
        assert ids["distinct_approximate"] and v["quantiles_approximate"]
        assert ids["distinct"] == pytest.approx(n, rel=0.05)
        for q, x in v["quantiles"].items():
            assert x == pytest.approx(float(np.quantile(values, float(q))), abs=0.05)
        assert sum(v["histogram"]["counts"]) == n
        second = profile_table(path, quantile_sample_rows=20_000)
        assert second["columns"]["v"]["quantiles"] == v["quantiles"]
        assert second["columns"]["id"]["distinct"] == ids["distinct"]

    def test_an_empty_table_has_zero_counts_and_no_statistics(self, tmp_path: Path) -> None:
        profile = profile_table(_table(tmp_path, "t", _frame().iloc[:0]))
        assert profile["row_count"] == 0
        x, city = profile["columns"]["x"], profile["columns"]["city"]
        assert (x["count"], x["nulls"], x["null_fraction"], x["distinct"]) == (0, 0, 0.0, 0)
        assert x["mean"] is None and x["quantiles"] is None and x["histogram"] is None
        assert city["top"] == [] and profile["columns"]["when"]["min"] is None
        json.dumps(profile, allow_nan=False)

    def test_bad_arguments_are_invalid_input(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidInput, match="bins"):
            profile_table(_table(tmp_path, "t", _frame()), bins=0)


class TestDiffTables:
    def _pair(self, tmp_path: Path) -> tuple[Path, Path]:
        old = pd.DataFrame(
            {"id": [1, 2, 3, 4], "x": [1.0, 2.0, 3.0, 4.0], "s": list("abcd"), "gone": [0] * 4}
        )
        new = pd.DataFrame(
            {
                "id": [2, 3, 4, 5, 6],
                "x": [2.0, 30.0, 4.0, 5.0, 6.0],
                "s": ["b", "c", "dd", "e", "f"],
                "fresh": [1] * 5,
            }
        )
        return _table(tmp_path, "old", old), _table(tmp_path, "new", new)

    def test_reports_schema_changes_row_counts_and_rows_by_key(self, tmp_path: Path) -> None:
        old, new = self._pair(tmp_path)
        diff = diff_tables(old, new, key=["id"], sample=1)
        assert diff["schema"] == {"added": ["fresh"], "removed": ["gone"], "type_changed": []}
        assert diff["row_count"] == {"old": 4, "new": 5, "change": 1}
        rows = diff["rows"]
        assert (rows["key"], rows["added"], rows["removed"], rows["changed"]) == (["id"], 2, 1, 2)
        assert rows["changed_by_column"] == {"x": 1, "s": 1}
        assert rows["sample_added"] == [{"id": 5, "x": 5.0, "s": "e", "fresh": 1}]
        assert rows["sample_removed"] == [{"id": 1, "x": 1.0, "s": "a", "gone": 0}]
        assert rows["sample_changed"] == [{"key": {"id": 3}, "columns": ["x"]}]
        json.dumps(diff, allow_nan=False)

    def test_column_shifts_list_only_statistics_that_changed(self, tmp_path: Path) -> None:
        old, new = self._pair(tmp_path)
        columns = diff_tables(old, new)["columns"]
        assert "rows" not in diff_tables(old, new)
        assert set(columns) == {"id", "x", "s"}  # shared columns only
        assert columns["x"]["mean"] == {"old": 2.5, "new": 9.4, "change": pytest.approx(6.9)}
        assert columns["s"]["max_length"] == {"old": 1, "new": 2, "change": 1}
        assert "nulls" not in columns["x"] and "null_fraction" not in columns["x"]

    def test_identical_tables_differ_in_nothing(self, tmp_path: Path) -> None:
        old = _table(tmp_path, "a", _frame())
        new = _table(tmp_path, "b", _frame())
        diff = diff_tables(old, new, key=["id"])
        assert diff["columns"] == {} and diff["row_count"]["change"] == 0
        assert (diff["rows"]["added"], diff["rows"]["removed"], diff["rows"]["changed"]) == (
            0,
            0,
            0,
        )

    def test_a_type_change_compares_numbers_by_value(self, tmp_path: Path) -> None:
        """int 2 and double 2.0 are the same value: the type change is reported once, in the
        schema, and only the row whose value moved counts as changed."""
        old = _table(tmp_path, "a", pd.DataFrame({"id": [1, 2], "v": [1, 2]}))
        new = _table(tmp_path, "b", pd.DataFrame({"id": [1, 2], "v": [1.0, 2.5]}))
        diff = diff_tables(old, new, key=["id"])
        assert diff["schema"]["type_changed"] == [{"name": "v", "old": "int64", "new": "double"}]
        assert (diff["rows"]["changed"], diff["rows"]["changed_by_column"]) == (1, {"v": 1})

    def test_composite_keys_match_nulls_to_nulls(self, tmp_path: Path) -> None:
        old = _table(tmp_path, "a", pd.DataFrame({"k": ["a", None], "n": [1, 1], "v": [1, 2]}))
        new = _table(tmp_path, "b", pd.DataFrame({"k": ["a", None], "n": [1, 1], "v": [1, 3]}))
        rows = diff_tables(old, new, key=["k", "n"])["rows"]
        assert (rows["added"], rows["removed"], rows["changed"]) == (0, 0, 1)
        assert rows["sample_changed"] == [{"key": {"k": None, "n": 1}, "columns": ["v"]}]

    def test_a_duplicate_key_is_an_error_naming_the_key_columns(self, tmp_path: Path) -> None:
        old = _table(tmp_path, "a", pd.DataFrame({"k": [1, 2], "d": ["x", "y"]}))
        new = _table(tmp_path, "b", pd.DataFrame({"k": [1, 1], "d": ["x", "x"]}))
        with pytest.raises(InvalidInput, match=r"key \(k, d\) does not identify rows in .*b\.parq"):
            diff_tables(old, new, key=["k", "d"])

    def test_a_missing_key_column_is_named(self, tmp_path: Path) -> None:
        old, new = self._pair(tmp_path)
        with pytest.raises(InvalidInput, match="'gone' is not in the new table"):
            diff_tables(old, new, key=["gone"])

    def test_stored_profiles_are_used_instead_of_profiling_again(self, tmp_path: Path) -> None:
        old, new = self._pair(tmp_path)
        old_profile = profile_table(old)
        new_profile = json.loads(json.dumps(old_profile))
        new_profile["columns"]["x"]["mean"] = 99.0
        diff = diff_tables(old, new, old_profile=old_profile, new_profile=new_profile)
        assert diff["columns"] == {"x": {"mean": {"old": 2.5, "new": 99.0, "change": 96.5}}}

    def test_empty_tables(self, tmp_path: Path) -> None:
        empty = _table(tmp_path, "a", _frame().iloc[:0])
        full = _table(tmp_path, "b", _frame())
        diff = diff_tables(empty, full, key=["id"])
        assert diff["row_count"] == {"old": 0, "new": 5, "change": 5}
        assert (diff["rows"]["added"], diff["rows"]["removed"]) == (5, 0)
