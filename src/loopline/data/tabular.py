"""Tables as canonical Parquet: conversion, schema, profile and diff, knowing nothing of the store.

Every table (pandas DataFrame, pyarrow Table or record-batch stream, Parquet, CSV/TSV, gzipped or
not) is stored as one Parquet file written the same way every time, so equal content gives equal
bytes and the blob store deduplicates it. Profiles and diffs are DuckDB queries over those files:
DuckDB reads only the columns a query needs and streams row groups, so neither loads a dataset
into memory.

Decisions worth knowing (docs/data-tabular.md has the user-facing version):

- Canonical bytes: rows are regrouped into row groups of exactly ``batch_rows`` (whatever the
  input's chunking), writer options are pinned, schema metadata is dropped (pandas' block holds
  library versions and the index) and ``large_string``/``large_binary`` become ``string``/
  ``binary``. Parquet's footer names the writing pyarrow version, so bytes are identical for one
  pyarrow version; after an upgrade the same table is stored once more, never wrongly shared.
- pandas index: an unnamed ``RangeIndex`` is only row positions and is not stored; any other
  index (named, or labels such as dates) carries data and becomes ordinary leading columns.
- NaN is missing: it counts in ``nulls``, like pandas' ``isna``. ±inf is a value (``count``,
  ``distinct``, ``infinite``) but is left out of min/max/mean/std/quantiles/histogram so every
  statistic stays finite and JSON-valid; histogram counts sum to ``count - infinite``.
- Large tables: distinct counts become HyperLogLog estimates and quantiles are computed on a
  fixed hash-chosen sample, both flagged, so memory stays flat and a profile is repeatable.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from loopline.errors import InvalidInput

__all__ = [
    "QUANTILES",
    "MalformedRow",
    "TableInfo",
    "diff_tables",
    "profile_table",
    "read_schema",
    "write_parquet",
]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
MAX_MALFORMED_TEXT = 500
# Pinned so the bytes never depend on pyarrow's defaults of the day.
_PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "version": "2.6",
    "use_dictionary": True,
    "write_statistics": True,
    "data_page_size": 1024 * 1024,
    "data_page_version": "1.0",
    "use_byte_stream_split": False,
    "write_page_index": False,
    "store_schema": True,
}
_CSV_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}
_COMPRESSED = {".gz", ".bz2", ".zst", ".lz4"}
_CONVERSION_ERROR = re.compile(
    r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to ([^:]+): invalid value '(.*)'",
    re.S,
)


@dataclass(frozen=True)
class MalformedRow:
    """A CSV row skipped because it could not be parsed; reported, never fatal."""

    line: int
    """1-based line in the CSV file (0 if unknown). With ``newlines_in_values`` a quoted value
    may span lines and this is the record's number instead."""
    reason: str
    text: str
    """The raw line, truncated to 500 characters."""


@dataclass(frozen=True)
class TableInfo:
    schema: list[dict[str, Any]]
    row_count: int
    malformed: list[MalformedRow]
    """The first ``max_malformed`` skipped rows; ``malformed_count`` counts all of them."""
    malformed_count: int = 0


# -- writing -----------------------------------------------------------------------------------


def write_parquet(
    source: Any,
    target: Path,
    *,
    csv_options: Mapping[str, Any] | None = None,
    batch_rows: int = 65536,
    max_malformed: int = 1000,
) -> TableInfo:
    """Store ``source`` at ``target`` as canonical Parquet (zstd), streaming batch by batch.

    ``source``: a pandas DataFrame, a pyarrow Table/RecordBatch/RecordBatchReader, any object
    with ``__arrow_c_stream__`` (polars, ...), or a path to ``.parquet``, ``.csv``, ``.tsv``
    (optionally ``.gz``/``.bz2``/``.zst``/``.lz4``). ``csv_options`` keys are field names of
    pyarrow's ``ReadOptions``, ``ParseOptions`` or ``ConvertOptions`` (``delimiter``,
    ``column_types``, ``null_values``, ``encoding``, ...). Malformed CSV rows are skipped and
    reported with their line numbers; at most ``max_malformed`` are kept, all are counted.
    The file appears at ``target`` only once complete (temp file + rename).
    """
    if batch_rows < 1:
        raise InvalidInput(f"batch_rows must be at least 1, got {batch_rows}")
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if not path.is_file():
                raise InvalidInput(f"table source {path} does not exist or is not a file")
            kind = _file_kind(path)
            if kind == "csv":
                info = _write_csv(path, tmp, dict(csv_options or {}), batch_rows, max_malformed)
            else:
                info = _write_stream(*_parquet_batches(path, batch_rows), tmp, batch_rows)
        else:
            if csv_options:
                raise InvalidInput("csv_options apply only to a CSV/TSV file source")
            info = _write_stream(*_in_memory_batches(source, batch_rows), tmp, batch_rows)
        os.replace(tmp, target)
        return info
    finally:
        tmp.unlink(missing_ok=True)


def read_schema(parquet_path: Path) -> list[dict[str, Any]]:
    """The Arrow schema of a stored table as JSON-ready dicts (name, type string, nullable)."""
    try:
        schema = pq.read_schema(parquet_path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"cannot read the Parquet schema of {parquet_path}: {exc}") from exc
    return _schema_dicts(schema)


def _schema_dicts(schema: pa.Schema) -> list[dict[str, Any]]:
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def _file_kind(path: Path) -> str:
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    if _csv_suffix(path) in _CSV_SUFFIXES:
        return "csv"
    raise InvalidInput(
        f"{path}: unsupported table file type {''.join(path.suffixes) or '(no suffix)'}; "
        "use .parquet, .csv or .tsv (optionally .gz)"
    )


def _canonical_type(t: pa.DataType) -> pa.DataType:
    """64-bit offsets are a memory-layout choice, not content: a DataFrame (pandas gives
    large_string) and the same data read from CSV (string) should store alike."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_dictionary(t):
        return pa.dictionary(t.index_type, _canonical_type(t.value_type), t.ordered)
    return t


def _canonical_schema(schema: pa.Schema) -> pa.Schema:
    names = schema.names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"column names must be unique; repeated: {', '.join(dupes)}")
    return pa.schema(
        [pa.field(f.name, _canonical_type(f.type), f.nullable) for f in schema]  # no metadata
    )


def _in_memory_batches(source: Any, batch_rows: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return _pandas_batches(source, batch_rows)
    if isinstance(source, pa.Table):
        return source.schema, iter(source.to_batches(max_chunksize=batch_rows))
    if isinstance(source, pa.RecordBatch):
        return source.schema, iter([source])
    if isinstance(source, pa.RecordBatchReader):
        return source.schema, iter(source)
    if hasattr(source, "__arrow_c_stream__"):
        reader = pa.RecordBatchReader.from_stream(source)
        return reader.schema, iter(reader)
    raise InvalidInput(
        f"cannot store a {type(source).__module__}.{type(source).__qualname__} as a table; "
        "pass a pandas DataFrame, a pyarrow Table or a .parquet/.csv/.tsv path"
    )


def _pandas_batches(df: Any, batch_rows: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pandas as pd

    index = df.index
    if not (isinstance(index, pd.RangeIndex) and index.name is None):
        df = df.reset_index()  # labels are data: keep them as ordinary columns
    df = df.set_axis([str(c) for c in df.columns], axis=1)
    try:
        # The schema is inferred from the whole frame once, so an object column that is all None
        # in its first slice still gets the type of its later values.
        schema = pa.Schema.from_pandas(df, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot convert the DataFrame to Arrow: {exc}") from exc

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(df), batch_rows):
            part = df.iloc[start : start + batch_rows]
            try:
                yield pa.RecordBatch.from_pandas(part, schema=schema, preserve_index=False)
            except (pa.ArrowException, ValueError, TypeError) as exc:
                raise InvalidInput(f"cannot convert the DataFrame to Arrow: {exc}") from exc

    return schema, batches()


def _parquet_batches(path: Path, batch_rows: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"{path} is not a readable Parquet file: {exc}") from exc
    return pf.schema_arrow, pf.iter_batches(batch_size=batch_rows)


def _write_stream(
    schema: pa.Schema, batches: Iterator[pa.RecordBatch], tmp: Path, batch_rows: int
) -> TableInfo:
    canonical = _canonical_schema(schema)
    rows = 0
    with _RowGroupWriter(tmp, canonical, batch_rows) as writer:
        for batch in batches:
            writer.add(batch)
        rows = writer.rows
    return TableInfo(_schema_dicts(canonical), rows, [], 0)


class _RowGroupWriter:
    """Re-chunks any stream of batches into row groups of exactly ``rows`` rows (the last one
    shorter), each written from one contiguous chunk: page and row-group boundaries then depend
    only on the content, which makes the bytes canonical. Holds at most about two row groups."""

    def __init__(self, path: Path, schema: pa.Schema, rows: int) -> None:
        self.schema, self.group_rows, self.rows = schema, rows, 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(path, schema, **_PARQUET_OPTIONS)

    def __enter__(self) -> _RowGroupWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None and self._pending_rows:
                self._flush(self._pending_rows)
        finally:
            self._writer.close()

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if batch.schema != self.schema:  # large_string to string, metadata dropped
            try:
                (batch,) = pa.Table.from_batches([batch]).cast(self.schema).to_batches()
            except pa.ArrowInvalid as exc:  # over 2 GiB of text in one batch: fewer rows
                raise InvalidInput(f"cannot store the table: {exc}; lower batch_rows") from exc
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        while self._pending_rows >= self.group_rows:
            self._flush(self.group_rows)

    def _flush(self, n: int) -> None:
        table = pa.Table.from_batches(self._pending, self.schema)
        group = table.slice(0, n).unify_dictionaries().combine_chunks()
        self._writer.write_table(group, row_group_size=n)
        rest = table.slice(n)
        self._pending, self._pending_rows = rest.to_batches(), rest.num_rows


def _csv_options(
    path: Path, options: dict[str, Any]
) -> tuple[pa_csv.ReadOptions, pa_csv.ParseOptions, pa_csv.ConvertOptions]:
    read = pa_csv.ReadOptions(use_threads=False)  # row numbers are only known when serial
    parse = pa_csv.ParseOptions(delimiter=_CSV_SUFFIXES.get(_csv_suffix(path), ","))
    convert = pa_csv.ConvertOptions()
    for key, value in options.items():
        if key in ("invalid_row_handler", "use_threads"):
            raise InvalidInput(f"csv option {key!r} is set by Loopline and cannot be changed")
        owner = next((o for o in (read, parse, convert) if hasattr(o, key)), None)
        if owner is None:
            raise InvalidInput(
                f"unknown csv option {key!r}; use a field of pyarrow.csv ReadOptions, "
                "ParseOptions or ConvertOptions"
            )
        try:
            setattr(owner, key, value)
        except (TypeError, ValueError, pa.ArrowException) as exc:
            raise InvalidInput(f"csv option {key!r}: {exc}") from exc
    return read, parse, convert


def _csv_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


class _Malformed:
    """The ``invalid_row_handler``: records (up to a limit) and counts rows, then skips them."""

    def __init__(self, limit: int) -> None:
        self.limit, self.count, self.rows = limit, 0, []

    def __call__(self, row: Any) -> str:
        self.count += 1
        if len(self.rows) < self.limit:
            reason = f"expected {row.expected_columns} columns, got {row.actual_columns}"
            self.rows.append(MalformedRow(row.number or 0, reason, row.text[:MAX_MALFORMED_TEXT]))
        return "skip"


def _write_csv(
    path: Path, tmp: Path, options: dict[str, Any], batch_rows: int, max_malformed: int
) -> TableInfo:
    """Stream the CSV into Parquet. Arrow infers column types from the first block (1 MB); when
    a later block holds a value that type cannot take, that column is widened (null → int →
    float → string) and the file is read again from the start: rare, and still streaming, where
    reading everything as text first would double the work of every file. Types the caller set
    in ``column_types`` are never widened: a value they reject is an error."""
    user_types = dict(options.get("column_types") or {})
    widened: dict[str, pa.DataType] = {}
    while True:  # ends: each retry widens one column one step, and string takes any value
        read, parse, convert = _csv_options(path, options)
        convert.column_types = {**user_types, **widened}
        parse.invalid_row_handler = handler = _Malformed(max_malformed)
        reader = None
        try:
            reader = pa_csv.open_csv(
                path, read_options=read, parse_options=parse, convert_options=convert
            )
            info = _write_stream(reader.schema, iter(reader), tmp, batch_rows)
        except pa.ArrowInvalid as exc:
            match = _CONVERSION_ERROR.search(str(exc))
            if match is None:
                raise InvalidInput(f"cannot read {path} as CSV: {exc}") from exc
            # Failing in the first block means a declared type: inferred ones fit that block.
            names = reader.schema.names if reader else _csv_names(path, read, parse)
            name, failed, value = names[int(match[1])], match[3], match[4]
            wider = _wider(failed, value)
            if name in user_types or widened.get(name) == wider:
                where = f" in row {match[2]}" if match[2] else ""
                raise InvalidInput(
                    f"{path}: column {name!r} is {failed} but holds {value[:100]!r}{where}; "
                    "fix the value or the column's type in csv_options column_types"
                ) from exc
            widened[name] = wider
            continue
        rows = _physical_lines(path, handler.rows, parse)
        return TableInfo(info.schema, info.row_count, rows, handler.count)


def _csv_names(path: Path, read: pa_csv.ReadOptions, parse: pa_csv.ParseOptions) -> list[str]:
    """Column names as Arrow reads them, from the first block alone."""
    return pa_csv.open_csv(path, read_options=read, parse_options=parse).schema.names


def _wider(failed: str, value: str) -> pa.DataType:
    """The next type to try for a column whose type ``failed`` rejected ``value``."""
    text = value.strip()
    steps = {"null": [(pa.int64(), int), (pa.float64(), float)], "int64": [(pa.float64(), float)]}
    for candidate, parse in steps.get(failed, []):
        try:
            parse(text)
        except ValueError:
            continue
        return candidate
    return pa.string()


def _physical_lines(
    path: Path, malformed: list[MalformedRow], parse: pa_csv.ParseOptions
) -> list[MalformedRow]:
    """Arrow numbers rows without counting empty lines, so after a blank line its number lags
    the real line. Re-count once, only when rows were skipped: map the n-th non-empty line to its
    physical line number (streamed; stops at the last row wanted)."""
    if not malformed or parse.newlines_in_values or not parse.ignore_empty_lines:
        return malformed
    wanted = sorted({m.line for m in malformed if m.line > 0})
    if not wanted:
        return malformed
    mapping: dict[int, int] = {}
    nonempty = physical = 0
    want = iter(wanted)
    next_wanted = next(want)
    with pa.input_stream(str(path), compression="detect") as raw:
        for line in io.BufferedReader(raw, buffer_size=1 << 20):  # type: ignore[arg-type]
            physical += 1
            if line in (b"\n", b"\r\n"):
                continue
            nonempty += 1
            if nonempty == next_wanted:
                mapping[nonempty] = physical
                next_wanted = next(want, None)
                if next_wanted is None:
                    break
    return [MalformedRow(mapping.get(m.line, m.line), m.reason, m.text) for m in malformed]


# -- DuckDB ------------------------------------------------------------------------------------


def _quote(name: str) -> str:
    """A DuckDB identifier for any column name: user names are never spliced in unquoted."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def _duckdb() -> Iterator[Any]:
    """An in-memory DuckDB using every core; spills (large joins) go to a private temp dir."""
    import duckdb

    spill = Path(tempfile.gettempdir()) / f"loopline-duckdb-{uuid.uuid4().hex}"
    config = {"threads": os.cpu_count() or 1, "temp_directory": str(spill)}
    con = duckdb.connect(config=config)
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


@dataclass(frozen=True)
class _Column:
    name: str
    field: pa.Field
    sql: str  # the quoted name DuckDB gives this column (it renames 'a' next to 'A')
    kind: str  # numeric | float | string | bool | temporal | other


def _columns(con: Any, path: Path) -> list[_Column]:
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"{path} is not a readable Parquet file: {exc}") from exc
    described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    return [
        _Column(f.name, f, _quote(row[0]), _kind(f.type))
        for f, row in zip(schema, described, strict=True)
    ]


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_integer(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_time(t):
        return "temporal"
    return "other"


# -- profile -----------------------------------------------------------------------------------


def profile_table(
    parquet_path: Path,
    *,
    top_k: int = 10,
    bins: int = 20,
    exact_distinct_max_rows: int = 100_000,
    quantile_sample_rows: int = 250_000,
) -> dict[str, Any]:
    """Per-column statistics of a stored table, JSON-ready (no NaN: undefined values are None).

    One DuckDB scan computes every count, distinct, min/max, mean, std, quantile and length; a
    second builds all histograms (buckets need min/max); one small GROUP BY per text/bool column
    finds its top values. Memory stays flat however large the table: above
    ``exact_distinct_max_rows`` rows distinct counts are HyperLogLog estimates, and above
    ``quantile_sample_rows`` quantiles are exact over a fixed sample of about that many rows
    (chosen by a hash of the row number), both flagged. DuckDB's t-digest ``approx_quantile``
    was 3x slower here and gave different answers from run to run, which would make an
    unchanged table look changed in a diff."""
    if not 1 <= bins <= 10_000 or top_k < 0:
        raise InvalidInput(f"bins must be 1..10000 and top_k >= 0, got {bins} and {top_k}")
    path = str(parquet_path)
    with _duckdb() as con:
        columns = _columns(con, Path(parquet_path))
        row_count = pq.ParquetFile(path).metadata.num_rows
        approximate = row_count > exact_distinct_max_rows
        stride = math.ceil(row_count / max(quantile_sample_rows, 1))
        if any(c.name.lower() == "file_row_number" for c in columns):
            stride = 1  # DuckDB cannot add its row-number column; fall back to exact quantiles
        stats = _aggregate(con, path, columns, approximate, stride)
        histograms = _histograms(con, path, columns, stats, bins)
        profile: dict[str, Any] = {"row_count": row_count, "columns": {}}
        for i, col in enumerate(columns):
            s = stats[i]
            count = s["count"]
            entry: dict[str, Any] = {
                "type": str(col.field.type),
                "count": count,
                "nulls": row_count - count,
                "null_fraction": (row_count - count) / row_count if row_count else 0.0,
                "distinct": s["distinct"],
                "distinct_approximate": approximate,
            }
            if col.kind in ("numeric", "float"):
                entry.update(_numeric_entry(s, stride > 1, histograms.get(i)))
            elif col.kind in ("string", "bool"):
                entry["top"] = _top(con, path, col, top_k) if count else []
                if col.kind == "string":
                    entry["min_length"], entry["max_length"] = s["min_length"], s["max_length"]
            elif col.kind == "temporal":
                entry["min"], entry["max"] = s["min"], s["max"]
            profile["columns"][col.name] = entry
    return _json_safe(profile)


def _aggregate(
    con: Any, path: str, columns: list[_Column], approximate: bool, stride: int
) -> list[dict[str, Any]]:
    """Every per-column aggregate in one scan. The inner projection cleans values once (``v``:
    NaN to NULL; ``f``: finite values as DOUBLE; ``q``: ``f`` on sampled rows) so the outer
    query never names a user column."""
    inner = ["1 AS __one"]
    source = "read_parquet(?)"
    if stride > 1:
        inner.append(f"hash(file_row_number) % {int(stride)} = 0 AS __sampled")
        source = "read_parquet(?, file_row_number = true)"
    outer: list[str] = []
    layout: list[list[str]] = []
    distinct = "approx_count_distinct({})" if approximate else "count(DISTINCT {})"
    qlist = "[" + ", ".join(repr(q) for q in QUANTILES) + "]"
    for i, col in enumerate(columns):
        v, f, q = f"v{i}", f"f{i}", f"q{i}"
        keys = ["count", "distinct"]
        if col.kind == "float":
            inner.append(f"CASE WHEN NOT isnan({col.sql}) THEN {col.sql} END AS {v}")
            inner.append(f"CASE WHEN isfinite({col.sql}) THEN {col.sql}::DOUBLE END AS {f}")
        else:
            inner.append(f"{col.sql} AS {v}")
            if col.kind == "numeric":
                inner.append(f"{col.sql}::DOUBLE AS {f}")
        outer += [f"count({v})", distinct.format(v)]
        if col.kind == "float":
            outer.append(f"count({v}) - count({f})")
            keys.append("infinite")
        if col.kind in ("float", "numeric"):
            if stride > 1:
                inner.append(f"CASE WHEN __sampled THEN {f} END AS {q}")
            outer += [f"min({f})", f"max({f})", f"avg({f})", f"stddev_samp({f})"]
            outer.append(f"quantile_cont({q if stride > 1 else f}, {qlist})")
            keys += ["min", "max", "mean", "std", "quantiles"]
        elif col.kind == "string":
            outer += [f"min(length({v}))", f"max(length({v}))"]
            keys += ["min_length", "max_length"]
        elif col.kind == "temporal":
            outer += [f"min({v})", f"max({v})"]
            keys += ["min", "max"]
        layout.append(keys)
    if not outer:
        return []
    sql = f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {source})"
    values = iter(con.execute(sql, [path]).fetchone())
    return [{key: next(values) for key in keys} for keys in layout]


def _histogram_range(lo: float, hi: float, bins: int) -> list[float]:
    if lo == hi:  # numpy's convention for a constant column: a unit-wide range around it
        lo, hi = lo - 0.5, hi + 0.5
    edges = [lo + (hi - lo) * i / bins for i in range(bins)]
    return [*edges, hi]


def _histograms(
    con: Any, path: str, columns: list[_Column], stats: list[dict[str, Any]], bins: int
) -> dict[int, dict[str, list[Any]]]:
    """All numeric histograms in one scan: ``histogram()`` of each value's bucket index
    ``floor((x - lo) * bins / (hi - lo))``, with ``lo``/``hi`` bound as parameters.

    Measured choices: the bucket is a TRY_CAST to the narrowest unsigned type (``histogram()``
    over UTINYINT ran twice as fast as over INTEGER), which also turns NaN and ±inf into NULL
    (not counted) with no CASE; every finite x is >= lo, so no lower clamp is needed; and the
    maximum, whose bucket is ``bins``, is folded into the last bucket here (numpy's closed last
    bin) instead of clamping each row with ``least``."""
    outer, params, which = [], [], []
    bucket_type = "UTINYINT" if bins < 256 else "USMALLINT"
    edges: dict[int, list[float]] = {}
    for i, col in enumerate(columns):
        s = stats[i]
        if col.kind not in ("numeric", "float") or s.get("min") is None:
            continue
        e = _histogram_range(float(s["min"]), float(s["max"]), bins)
        scale = bins / (e[-1] - e[0])
        if not math.isfinite(scale) or scale == 0:
            continue  # a range wider than a double can hold
        edges[i] = e
        x = f"{col.sql}::DOUBLE" if col.kind == "numeric" else col.sql
        outer.append(f"histogram(TRY_CAST(floor(({x} - ?) * ?) AS {bucket_type}))")
        params += [e[0], scale]
        which.append(i)
    if not which:
        return {}
    sql = f"SELECT {', '.join(outer)} FROM read_parquet(?)"
    row = con.execute(sql, [*params, path]).fetchone()
    result: dict[int, dict[str, list[Any]]] = {}
    for i, counts in zip(which, row, strict=True):
        by_bucket = _as_dict(counts)
        by_bucket[bins - 1] = by_bucket.get(bins - 1, 0) + by_bucket.pop(bins, 0)
        result[i] = {"edges": edges[i], "counts": [by_bucket.get(b, 0) for b in range(bins)]}
    return result


def _as_dict(value: Any) -> dict[Any, Any]:
    if value is None:
        return {}
    if isinstance(value, dict) and set(value) == {"key", "value"}:  # older DuckDB MAP shape
        return dict(zip(value["key"], value["value"], strict=True))
    return dict(value)


def _numeric_entry(
    s: dict[str, Any], approximate: bool, histogram: dict[str, list[Any]] | None
) -> dict[str, Any]:
    quantiles = s["quantiles"]
    entry: dict[str, Any] = {
        "min": s["min"],
        "max": s["max"],
        "mean": s["mean"],
        "std": s["std"],
        "quantiles": (
            {str(q): float(x) for q, x in zip(QUANTILES, quantiles, strict=True)}
            if quantiles
            else None
        ),
        "quantiles_approximate": approximate,
        "histogram": histogram,
    }
    if "infinite" in s:
        entry["infinite"] = s["infinite"]
    return entry


def _top(con: Any, path: str, col: _Column, k: int) -> list[dict[str, Any]]:
    """The ``k`` most frequent values, ties broken by value so the profile is deterministic."""
    if k == 0:
        return []
    sql = (
        f"SELECT CAST(v AS VARCHAR) AS value, count(*) AS n FROM "
        f"(SELECT {col.sql} AS v FROM read_parquet(?)) WHERE v IS NOT NULL "
        f"GROUP BY v ORDER BY n DESC, value LIMIT ?"
    )
    return [{"value": v, "count": n} for v, n in con.execute(sql, [path, k]).fetchall()]


def _json_safe(value: Any) -> Any:
    """Plain JSON types only: NaN/inf become None, dates ISO strings, decimals floats."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, Decimal):
        return _json_safe(float(value))
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).isoformat()  # one zone whatever DuckDB's setting
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return _json_safe(value.item()) if hasattr(value, "item") else str(value)


# -- diff --------------------------------------------------------------------------------------

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
