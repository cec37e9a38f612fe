"""MLflow's scoring protocol (``POST /invocations``), so clients of ``mlflow models serve``
work unchanged.

The JSON body holds exactly one of:

- ``dataframe_split``: ``{"columns": [...], "data": [[...], ...]}`` (pandas' split orient);
- ``dataframe_records``: ``[{"column": value, ...}, ...]``;
- ``instances``: rows, each a list of values or an object of columns (TF Serving's row form);
- ``inputs``: an array (rows of values) or an object of columns (TF Serving's column form);

and optionally ``params``, which these models do not take. The answer is
``{"predictions": [...]}``: a list, or one object per row when the model returns a DataFrame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from loopline.errors import InvalidInput
from loopline.serving.model import ServedModel

__all__ = ["FORMATS", "decode_invocation", "encode_predictions"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _frame(value: Any, build: Any, key: str) -> pd.DataFrame:
    try:
        return build(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{key}: not a table ({exc})") from exc


def _rows(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return _frame(value, pd.DataFrame, key)  # columns
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{key} must be a non-empty list of rows or an object of columns")
    if all(isinstance(row, dict) for row in value):
        return _frame(value, pd.DataFrame, key)
    try:
        return np.asarray(value)
    except ValueError as exc:
        raise InvalidInput(f"{key}: rows must all have the same length ({exc})") from exc


def decode_invocation(body: Any, model: ServedModel) -> Any:
    """The model input a scoring request holds (a DataFrame or an array)."""
    data = _decode(body)
    if isinstance(data, pd.DataFrame):
        return model.integral_columns(data)
    return data


def _decode(body: Any) -> Any:
    if not isinstance(body, dict):
        raise InvalidInput(
            f"the request body must be a JSON object with one of {', '.join(FORMATS)}"
        )
    given = [key for key in FORMATS if key in body]
    unknown = sorted(set(body) - set(FORMATS) - {"params"})
    if len(given) != 1 or unknown:
        extra = f"; unknown key(s): {', '.join(unknown)}" if unknown else ""
        raise InvalidInput(
            f"the request body needs exactly one of {', '.join(FORMATS)}, "
            f"got {', '.join(given) or 'none'}{extra}"
        )
    if body.get("params"):
        raise InvalidInput("params: this model takes no inference parameters")
    key = given[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise InvalidInput('dataframe_split must be {"columns": [...], "data": [[...], ...]}')
        columns = value.get("columns")
        if columns is not None and not isinstance(columns, list):
            raise InvalidInput("dataframe_split.columns must be a list of column names")
        return _frame(value, lambda v: pd.DataFrame(v["data"], columns=columns), key)
    if key == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise InvalidInput("dataframe_records must be a list of objects, one per row")
        return _frame(value, pd.DataFrame, key)
    return _rows(value, key)


def encode_predictions(predictions: Any) -> dict[str, Any]:
    """``{"predictions": ...}`` in plain JSON types."""
    if isinstance(predictions, pd.DataFrame):
        return {"predictions": predictions.to_dict(orient="records")}
    if isinstance(predictions, pd.Series):
        return {"predictions": predictions.tolist()}
    return {"predictions": np.asarray(predictions).tolist()}
