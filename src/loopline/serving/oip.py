"""Open Inference Protocol v2 (KServe V2, Triton's HTTP/REST protocol) as JSON.

A request holds named tensors: ``{"name", "shape", "datatype", "data"}``, data row-major,
nested or flat. For a model trained on a DataFrame each tensor is one column, named as in the
signature; a single 2-D tensor (rows by columns, in signature order) works too. Any other
model takes one tensor. The response holds one tensor, ``predict`` (one per column when the
model returns a DataFrame), its datatype mapped from the numpy dtype.

Every refusal is an :class:`~loopline.errors.InvalidInput` naming the tensor (or, from
signature enforcement, the column) and what is wrong with it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from loopline.errors import InvalidInput
from loopline.serving.model import ServedModel

__all__ = [
    "DATATYPES",
    "datatype_of",
    "decode_request",
    "encode_outputs",
    "input_metadata",
    "output_metadata",
]

DATATYPES: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
"""OIP datatype -> numpy dtype."""
_FROM_NUMPY = {v: k for k, v in DATATYPES.items() if k != "BYTES"}
# MLflow column types (what signatures hold) -> OIP datatypes.
_FROM_MLFLOW = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
# Which JSON-decoded numpy kinds each datatype accepts without losing information: a 1.5 sent
# as INT64 is refused, not truncated to 1.
_ACCEPTS = {"BOOL": "b", "BYTES": "OUSbiuf"}
_ACCEPTS.update(dict.fromkeys(("UINT8", "UINT16", "UINT32", "UINT64"), "biu"))
_ACCEPTS.update(dict.fromkeys(("INT8", "INT16", "INT32", "INT64"), "biu"))
_ACCEPTS.update(dict.fromkeys(("FP16", "FP32", "FP64"), "biuf"))


def datatype_of(dtype: Any) -> str:
    """The OIP datatype for a numpy dtype; strings and objects are BYTES."""
    return _FROM_NUMPY.get(np.dtype(dtype).name, "BYTES")


# -- metadata ----------------------------------------------------------------------------------


def _tensor_meta(spec: dict[str, Any], default_name: str) -> dict[str, Any]:
    tensor = spec.get("tensor-spec") or {}
    return {
        "name": str(spec.get("name") or default_name),
        "datatype": datatype_of(tensor.get("dtype", "float64")),
        "shape": list(tensor.get("shape") or [-1]),
    }


def _column_meta(spec: dict[str, Any], default_name: str) -> dict[str, Any]:
    return {
        "name": str(spec.get("name") or default_name),
        "datatype": _FROM_MLFLOW.get(str(spec.get("type")), "BYTES"),
        "shape": [-1],
    }


def input_metadata(model: ServedModel) -> list[dict[str, Any]]:
    """``$metadata_tensor`` per input: one per signature column, or the signature's tensor."""
    metas = []
    for i, spec in enumerate(model.inputs):
        meta = _tensor_meta if spec.get("type") == "tensor" else _column_meta
        metas.append(meta(spec, f"input-{i}"))
    return metas


def output_metadata(model: ServedModel) -> list[dict[str, Any]]:
    """``$metadata_tensor`` per output; ``predict`` unless the model returns named columns.
    Empty when the signature does not say (the model was logged without an example)."""
    specs = model.outputs
    if len(specs) == 1 and not specs[0].get("name"):
        meta = _tensor_meta if specs[0].get("type") == "tensor" else _column_meta
        return [meta(specs[0], "predict")]
    return [_column_meta(spec, f"output-{i}") for i, spec in enumerate(specs)]


# -- requests ----------------------------------------------------------------------------------


def _field(tensor: dict[str, Any], key: str, where: str) -> Any:
    if key not in tensor:
        raise InvalidInput(f"{where}: missing '{key}' (a tensor has name, shape, datatype, data)")
    return tensor[key]


def _decode_tensor(tensor: Any, index: int) -> tuple[str, np.ndarray]:
    if not isinstance(tensor, dict):
        raise InvalidInput(f"inputs[{index}] must be an object with name, shape, datatype, data")
    name = _field(tensor, "name", f"inputs[{index}]")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"inputs[{index}].name must be a non-empty string")
    where = f"input tensor {name!r}"
    shape = _field(tensor, "shape", where)
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidInput(f"{where}: shape must be a list of whole numbers >= 0, got {shape!r}")
    datatype = _field(tensor, "datatype", where)
    if datatype not in DATATYPES:
        raise InvalidInput(f"{where}: unknown datatype {datatype!r}; one of {', '.join(DATATYPES)}")
    data = _field(tensor, "data", where)
    if not isinstance(data, list):
        raise InvalidInput(f"{where}: data must be a JSON array (binary data is not supported)")
    try:
        raw = np.asarray(data, dtype=object if datatype == "BYTES" else None)
    except ValueError as exc:  # ragged nesting
        raise InvalidInput(f"{where}: data is not a regular array ({exc})") from exc
    if raw.size and raw.dtype.kind not in _ACCEPTS[datatype]:
        raise InvalidInput(f"{where}: data holds {raw.dtype} values, not {datatype}")
    if raw.size != math.prod(shape):
        raise InvalidInput(
            f"{where}: shape {shape} needs {math.prod(shape)} elements, data has {raw.size}"
        )
    try:
        array = raw.astype(DATATYPES[datatype]).reshape(shape)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"{where}: data does not fit {datatype} ({exc})") from exc
    return name, array


def _as_column(name: str, array: np.ndarray) -> np.ndarray:
    if array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1):
        return array.reshape(-1)
    raise InvalidInput(
        f"input tensor {name!r} is a column: its shape must be [N] or [N, 1], "
        f"got {list(array.shape)}"
    )


def _rows_as_columns(array: np.ndarray, model: ServedModel) -> Any:
    """A [rows, columns] tensor as a DataFrame in signature column order (one tensor has one
    datatype, so a model with integer and float columns gets FP64 for all of them; see
    :meth:`ServedModel.integral_columns`). A tensor of another width is passed on for
    enforcement to refuse, naming the columns the model takes."""
    names = [str(c["name"]) for c in model.inputs if c.get("name")]
    if array.ndim != 2 or array.shape[1] != len(names):
        return array
    return model.integral_columns(pd.DataFrame(array, columns=names))


def decode_request(body: Any, model: ServedModel) -> Any:
    """The model input an ``$inference_request`` describes: a DataFrame of columns, or the
    one tensor as an array."""
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object with 'inputs'")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    tensors = [_decode_tensor(t, i) for i, t in enumerate(inputs)]
    names = [name for name, _ in tensors]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InvalidInput(f"input tensor(s) given twice: {', '.join(duplicated)}")
    columns = model.columns
    if columns and not set(names) <= set(columns):
        if len(tensors) == 1:  # one 2-D tensor of rows, columns in signature order
            return _rows_as_columns(tensors[0][1], model)
        unknown = [n for n in names if n not in columns]
        raise InvalidInput(
            f"input tensor(s) {', '.join(map(repr, unknown))} are not columns of model "
            f"{model.name!r}; it takes {', '.join(columns)}"
        )
    if not columns and len(tensors) == 1:
        return tensors[0][1]
    if not columns and model.inputs:
        raise InvalidInput(f"model {model.name!r} takes one tensor, got {len(tensors)}")
    frame = {name: _as_column(name, array) for name, array in tensors}
    lengths = {name: len(values) for name, values in frame.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{n} has {k}" for n, k in lengths.items())
        raise InvalidInput(f"input columns must all have the same length: {shown}")
    return model.integral_columns(pd.DataFrame(frame))


# -- responses ---------------------------------------------------------------------------------


def _tensor(name: str, values: Any) -> dict[str, Any]:
    array = np.asarray(values)
    datatype = datatype_of(array.dtype)
    flat = array.reshape(-1)
    data = [str(v) for v in flat] if datatype == "BYTES" else flat.tolist()
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


def encode_outputs(predictions: Any, requested: Any = None) -> list[dict[str, Any]]:
    """``$response_output`` tensors for the model's predictions; ``requested`` is the
    request's optional ``outputs`` list, which may only name outputs the model has."""
    if isinstance(predictions, pd.DataFrame):
        outputs = [_tensor(str(c), predictions[c].to_numpy()) for c in predictions.columns]
    else:
        outputs = [_tensor("predict", predictions)]
    if requested is None:
        return outputs
    if not isinstance(requested, list) or not all(
        isinstance(r, dict) and isinstance(r.get("name"), str) for r in requested
    ):
        raise InvalidInput("'outputs' must be a list of objects with a 'name'")
    have = {o["name"]: o for o in outputs}
    unknown = [r["name"] for r in requested if r["name"] not in have]
    if unknown:
        raise InvalidInput(
            f"requested output(s) {', '.join(map(repr, unknown))} unknown; "
            f"the model has {', '.join(have)}"
        )
    return [have[r["name"]] for r in requested]
