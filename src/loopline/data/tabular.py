"""Tables as canonical Parquet: conversion from any table source, and the schema of a stored one.

Every table (pandas DataFrame, pyarrow Table or record-batch stream, Parquet, CSV/TSV, gzipped or
not) is stored as one Parquet file written the same way every time, so equal content gives equal
bytes and the blob store deduplicates it. Profiles (:mod:`loopline.data.profiling`) and diffs
(:mod:`loopline.data.table_diff`) are DuckDB queries over those files; this module re-exports
them, so ``loopline.data.tabular`` stays the one import path for tables. None of it knows the
store.

Decisions worth knowing (docs/data-tabular.md has the user-facing version):

- Canonical bytes: rows are regrouped into row groups of exactly ``batch_rows`` (whatever the
  input's chunking), writer options are pinned, schema metadata is dropped (pandas' block holds
  library versions and the index) and ``large_string``/``large_binary`` become ``string``/
  ``binary``. Parquet's footer names the writing pyarrow version, so bytes are identical for one
  pyarrow version; after an upgrade the same table is stored once more, never wrongly shared.
- pandas index: an unnamed ``RangeIndex`` is only row positions and is not stored; any other
  index (named, or labels such as dates) carries data and becomes ordinary leading columns.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from loopline.data.duck import _schema_dicts, read_schema
from loopline.data.profiling import QUANTILES, profile_table
from loopline.data.table_diff import diff_tables
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
