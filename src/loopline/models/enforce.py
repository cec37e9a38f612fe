"""Checking prediction input against a model's signature, before the model sees it.

A column-based signature (a model trained on a DataFrame) needs every required column, with a
compatible type; safe widening is allowed (integers and booleans for a ``double`` column,
32-bit into 64-bit), anything lossy is refused. Columns the signature does not name are dropped
or refused, as the caller chooses. A tensor signature checks the array's trailing shape and its
kind of number. Every refusal is an :class:`InvalidInput` naming the column and the problem.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from loopline.errors import InvalidInput

__all__ = ["ExtraColumns", "enforce_signature"]

ExtraColumns = Literal["drop", "reject"]

# Signature type -> numpy dtype kinds accepted for it ("b" bool, "i"/"u" integers, "f" floats,
# "O"/"U"/"S" objects and strings, "M" datetimes).
_ACCEPTS = {
    "double": "biuf",
    "float": "biuf",
    "long": "biu",
    "integer": "biu",
    "boolean": "b",
    "string": "OUS",
    "binary": "OS",
    "datetime": "M",
}
_FLOATS = frozenset({"double", "float"})


def _schema(raw: Any) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    spec = json.loads(raw) if isinstance(raw, str) else raw
    return spec if isinstance(spec, list) and spec else None


def enforce_signature(
    data: Any, signature: dict[str, Any] | None, extra_columns: ExtraColumns = "drop"
) -> Any:
    """``data`` ready for the model: checked, reordered and safely widened; unchanged when the
    model has no signature."""
    import numpy as np
    import pandas as pd

    inputs = _schema((signature or {}).get("inputs"))
    if isinstance(data, dict):
        data = pd.DataFrame(data)
    if inputs is None:
        return data
    if inputs[0].get("type") == "tensor":
        return _enforce_tensor(np.asarray(data), inputs[0].get("tensor-spec") or {})
    columns = [c for c in inputs if c.get("name") is not None]
    if not columns:
        return data
    if isinstance(data, np.ndarray):
        if data.ndim != 2 or data.shape[1] != len(columns):
            raise InvalidInput(
                f"input: the model takes {len(columns)} named columns "
                f"({', '.join(c['name'] for c in columns)}); pass a DataFrame or dict"
            )
        data = pd.DataFrame(data, columns=[c["name"] for c in columns])
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(f"input must be a DataFrame, dict or array, got {type(data).__name__}")
    names = [str(c["name"]) for c in columns]
    missing = [
        c["name"] for c in columns if c["name"] not in data.columns and c.get("required", True)
    ]
    if missing:
        raise InvalidInput(f"input is missing required column(s): {', '.join(missing)}")
    extra = [str(c) for c in data.columns if str(c) not in names]
    if extra and extra_columns == "reject":
        raise InvalidInput(f"input has column(s) the model does not take: {', '.join(extra)}")
    out = data[[n for n in names if n in data.columns]].copy()
    for column in columns:
        name, kind = column["name"], str(column.get("type", ""))
        if name not in out.columns or kind not in _ACCEPTS:
            continue
        dtype = out[name].dtype
        if dtype.kind not in _ACCEPTS[kind]:
            raise InvalidInput(
                f"input column {name!r}: the model takes {kind}, got {dtype} (not safely "
                "convertible)"
            )
        if kind in _FLOATS and dtype.kind in "biu":
            out[name] = out[name].astype("float64")
    return out


def _enforce_tensor(array: Any, spec: dict[str, Any]) -> Any:
    shape = spec.get("shape") or []
    if shape and array.ndim != len(shape):
        raise InvalidInput(
            f"input: the model takes arrays of shape {shape}, got {list(array.shape)}"
        )
    for axis, (want, got) in enumerate(zip(shape, array.shape, strict=False)):
        if want != -1 and want != got:
            raise InvalidInput(f"input: dimension {axis} must be {want} (shape {shape}), got {got}")
    want_kind = str(spec.get("dtype", ""))[:1]
    if want_kind == "f" and array.dtype.kind in "biu":
        return array.astype(spec["dtype"])
    if want_kind and want_kind in "iuf" and array.dtype.kind not in "biuf":
        raise InvalidInput(f"input: the model takes {spec['dtype']} numbers, got {array.dtype}")
    return array
