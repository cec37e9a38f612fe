"""Reading stored Parquet tables, shared by the profile and the diff.

Their schema (Arrow, from the footer), their columns as DuckDB names and classifies them, an
in-memory DuckDB connection, and plain-JSON conversion of the values DuckDB returns. It sits
below :mod:`loopline.data.tabular`, :mod:`loopline.data.profiling` and
:mod:`loopline.data.table_diff` so none of them imports another to reach these. duckdb itself is
imported only when a connection opens, keeping ``loopline --help`` fast.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from loopline.errors import InvalidInput

__all__ = ["read_schema"]


def read_schema(parquet_path: Path) -> list[dict[str, Any]]:
    """The Arrow schema of a stored table as JSON-ready dicts (name, type string, nullable)."""
    try:
        schema = pq.read_schema(parquet_path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"cannot read the Parquet schema of {parquet_path}: {exc}") from exc
    return _schema_dicts(schema)


def _schema_dicts(schema: pa.Schema) -> list[dict[str, Any]]:
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


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
