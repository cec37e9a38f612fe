"""How step outputs become artifacts, and back.

| value | format | artifact |
|---|---|---|
| pandas DataFrame | ``parquet`` | ``outputs/<name>.parquet`` (canonical, see ``write_parquet``) |
| pyarrow Table | ``arrow`` | ``outputs/<name>.parquet`` |
| numpy ndarray (not object dtype) | ``npy`` | ``outputs/<name>.npy`` |
| JSON value (None, bool, int, float, str, lists, str-keyed dicts) | ``json`` | ``.json`` |
| fitted model (scikit-learn, XGBoost, LightGBM, ...) | ``mlmodel`` | ``outputs/<name>/`` |
| anything else | ``pickle`` | ``outputs/<name>.pkl`` (cloudpickle) |

An output's identity is its *digest*: the blob digest of its one file, or for a model
directory the digest over its files' paths and digests, leaving out ``MLmodel`` (which carries
a creation time and a fresh uuid). Same value, same digest; that is what downstream cache keys
are built from. Pickled outputs run code when loaded and their bytes can differ between library
versions: return a supported type where you can.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

from loopline.blobs.cas import BlobStore
from loopline.tracking.store import ArtifactRow

__all__ = [
    "EncodedOutput",
    "StoredOutput",
    "digest_of_rows",
    "digest_of_value",
    "encode_output",
    "load_output",
    "store_output",
]

_MODEL_MODULES = ("sklearn", "xgboost", "lightgbm", "catboost")
_METADATA_FILES = frozenset({"MLmodel"})


@dataclass(frozen=True)
class StoredOutput:
    """One stored output: where it lives among the run's artifacts and what it is."""

    name: str
    format: str
    path: str
    """Artifact path: a file, or for ``mlmodel`` the directory."""
    digest: str
    rows: tuple[ArtifactRow, ...] = ()

    def to_json(self) -> dict[str, str]:
        return {"format": self.format, "path": self.path, "digest": self.digest}


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _is_model(value: Any) -> bool:
    module = type(value).__module__.split(".", 1)[0]
    return module in _MODEL_MODULES and callable(getattr(value, "predict", None))


def format_of(value: Any) -> str:
    """Which format :func:`store_output` writes ``value`` in (see the module table)."""
    kind = type(value)
    module = kind.__module__.split(".", 1)[0]
    if module == "pandas" and kind.__name__ == "DataFrame":
        return "parquet"
    if module == "pyarrow" and kind.__name__ == "Table":
        return "arrow"
    if module == "numpy" and kind.__name__ == "ndarray" and value.dtype != object:
        return "npy"
    if _is_json(value):
        return "json"
    if _is_model(value):
        return "mlmodel"
    return "pickle"


_SUFFIX = {"parquet": ".parquet", "arrow": ".parquet", "npy": ".npy", "json": ".json"}


def _encode(value: Any, fmt: str) -> bytes | dict[str, bytes]:
    """The bytes of a one-file format, or an ``mlmodel`` directory's files by relative path."""
    if fmt == "json":
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    if fmt == "npy":
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return buffer.getvalue()
    if fmt in ("parquet", "arrow", "mlmodel"):
        with tempfile.TemporaryDirectory(prefix="loopline-output-") as tmp:
            if fmt == "mlmodel":
                from loopline.models.mlmodel import save_model

                root = save_model(value, Path(tmp) / "model")
                return {
                    p.relative_to(root).as_posix(): p.read_bytes()
                    for p in sorted(root.rglob("*"))
                    if p.is_file()
                }
            from loopline.data.tabular import write_parquet

            target = Path(tmp) / "table.parquet"
            write_parquet(value, target)
            return target.read_bytes()
    import cloudpickle

    return bytes(cloudpickle.dumps(value))


def _digest(data: bytes) -> str:
    return blake3.blake3(data, max_threads=1 if len(data) < 1 << 20 else -1).hexdigest()


def digest_of_rows(rows: Sequence[ArtifactRow], prefix: str) -> str:
    """An output's identity from its artifact rows (see the module docstring)."""
    if len(rows) == 1 and rows[0].path == prefix:
        return rows[0].digest
    text = "\n".join(
        f"{r.path[len(prefix) + 1 :]}:{r.digest}"
        for r in sorted(rows, key=lambda r: r.path)
        if r.path[len(prefix) + 1 :] not in _METADATA_FILES
    )
    return blake3.blake3(text.encode()).hexdigest()


@dataclass(frozen=True)
class EncodedOutput:
    """An output serialized in memory, its digest known, not yet in the blob store: the runner
    needs the digest at once (downstream cache keys) and stores the bytes in the background."""

    stored: StoredOutput
    files: tuple[tuple[ArtifactRow, bytes], ...]

    def put(self, blobs: BlobStore) -> list[ArtifactRow]:
        """Write the bytes to the blob store; returns the artifact rows to record."""
        for row, data in self.files:
            if blobs.put_stream(io.BytesIO(data), size_hint=len(data)) != row.digest:
                raise RuntimeError(f"blob digest mismatch storing {row.path}")
        return [row for row, _ in self.files]


def encode_output(name: str, value: Any) -> EncodedOutput:
    """Serialize ``value`` (see the module table) and compute its digest."""
    fmt = format_of(value)
    encoded = _encode(value, fmt)
    if isinstance(encoded, bytes):
        path = f"outputs/{name}{_SUFFIX.get(fmt, '.pkl')}"
        files = ((ArtifactRow(path, _digest(encoded), len(encoded)), encoded),)
    else:
        path = f"outputs/{name}"
        files = tuple(
            (ArtifactRow(f"{path}/{rel}", _digest(data), len(data)), data)
            for rel, data in encoded.items()
        )
    rows = [row for row, _ in files]
    return EncodedOutput(StoredOutput(name, fmt, path, digest_of_rows(rows, path)), files)


def store_output(blobs: BlobStore, name: str, value: Any) -> StoredOutput:
    """Serialize ``value`` into the blob store; returns it with its artifact rows."""
    encoded = encode_output(name, value)
    rows = tuple(encoded.put(blobs))
    s = encoded.stored
    return StoredOutput(s.name, s.format, s.path, s.digest, rows)


def digest_of_value(value: Any) -> str:
    """The digest ``store_output`` would give ``value``, without storing it."""
    return encode_output("value", value).stored.digest


def load_output(blobs: BlobStore, output: StoredOutput, rows: Sequence[ArtifactRow]) -> Any:
    """Read a stored output back as the type the step returned (a pyarrow Table stays one)."""
    fmt = output.format
    if fmt == "mlmodel":
        from loopline.models.loading import load_model_dir

        scratch = Path(tempfile.mkdtemp(prefix="loopline-model-"))
        try:
            for row in rows:
                target = scratch / row.path[len(output.path) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                blobs.get_to_path(row.digest, target)
            return load_model_dir(scratch).unwrap()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    data = blobs.read_bytes(output.digest)
    if fmt == "json":
        return json.loads(data)
    if fmt == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if fmt in ("parquet", "arrow"):
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        return table if fmt == "arrow" else table.to_pandas()
    import cloudpickle

    return cloudpickle.loads(data)
