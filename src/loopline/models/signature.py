"""Model signatures and input examples in MLflow's wire shapes, inferred from training data.

Column-based (pandas) inputs become ``[{"type": "double", "name": "x", "required": true}]``;
arrays become tensor specs. The JSON strings are what MLflow stores inside ``MLmodel``, so a
model written here loads in MLflow with its signature intact.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["infer_schema", "input_example_payload"]

_NUMPY_TO_MLFLOW = {
    "b": "boolean",
    "i": "long",
    "u": "long",
    "f": "double",
    "U": "string",
    "S": "binary",
    "O": "string",
    "M": "datetime",
}


def _type_of(dtype: Any) -> str:
    kind = getattr(dtype, "kind", "O")
    if kind == "i" and getattr(dtype, "itemsize", 8) <= 4:
        return "integer"
    if kind == "f" and getattr(dtype, "itemsize", 8) <= 4:
        return "float"
    return _NUMPY_TO_MLFLOW.get(kind, "string")


def infer_schema(data: Any) -> str | None:
    """The MLflow schema JSON for ``data`` (DataFrame, Series, ndarray or list), or None."""
    try:
        import numpy as np
        import pandas as pd
    except ImportError:  # pragma: no cover - both ship with Loopline
        return None
    if isinstance(data, pd.DataFrame):
        cols = [
            {"type": _type_of(dtype), "name": str(name), "required": True}
            for name, dtype in data.dtypes.items()
        ]
        return json.dumps(cols)
    if isinstance(data, pd.Series):
        return json.dumps([{"type": _type_of(data.dtype), "required": True}])
    array = np.asarray(data)
    if array.dtype == object:
        return None
    shape = [-1, *array.shape[1:]]
    return json.dumps(
        [{"type": "tensor", "tensor-spec": {"dtype": str(array.dtype), "shape": shape}}]
    )


def input_example_payload(data: Any, rows: int = 5) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(json_payload, saved_input_example_info)`` for the first ``rows`` of ``data``."""
    try:
        import numpy as np
        import pandas as pd
    except ImportError:  # pragma: no cover
        return None
    if isinstance(data, pd.DataFrame):
        head = data.head(rows)
        payload = {
            "columns": [str(c) for c in head.columns],
            "data": json.loads(head.to_json(orient="values")),
        }
        return payload, {
            "artifact_path": "input_example.json",
            "type": "dataframe",
            "pandas_orient": "split",
        }
    array = np.asarray(data)[:rows]
    if array.dtype == object:
        return None
    return {"inputs": array.tolist()}, {
        "artifact_path": "input_example.json",
        "type": "ndarray",
        "format": "tf-serving",
    }
