"""ONNX models as ``mlflow.onnx`` stores them: ``model.onnx`` (large tensors in a side file when
``save_as_external_data``), described by ``onnx_version``, ``data``, ``providers`` and
``onnx_session_options``, and run with onnxruntime.

An ONNX file is a graph of operators, not code, which makes it the safest format to load from a
registry you do not control. Prediction follows MLflow's ONNX wrapper, so both tools answer
alike: a DataFrame in gives a DataFrame out (one column per graph output), an array or feed
dict in gives ``{output name: array}``, and float64 input is cast to float32 where the graph
wants floats.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput
from loopline.models.flavors import Flavor, Predictor, Saved, defined_in, model_file, pin, require

__all__ = ["DEFAULT_PROVIDERS", "OnnxFlavor"]

# MLflow's default: CUDA when the onnxruntime build has it, else CPU.
DEFAULT_PROVIDERS = ["CUDAExecutionProvider", "CPUExecutionProvider"]
_FILE = "model.onnx"


class OnnxFlavor(Flavor):
    name = "onnx"
    loader_module = "mlflow.onnx"

    def matches(self, model: Any) -> bool:
        return defined_in(model, "onnx") and type(model).__name__ == "ModelProto"

    def save(
        self, model: Any, directory: Path, *, serialization_format: str | None = None
    ) -> Saved:
        onnx = require("onnx", "saving an ONNX model")
        if not isinstance(model, onnx.ModelProto):
            raise InvalidInput(
                f"the onnx flavor saves onnx.ModelProto graphs, not {type(model).__name__}; "
                "convert the model first (skl2onnx, torch.onnx, ...)"
            )
        if serialization_format is not None:
            raise InvalidInput("an ONNX model has one format; leave serialization_format unset")
        # As mlflow.onnx: tensors over onnx's size threshold go to a side file, so models over
        # protobuf's 2 GB limit still save.
        onnx.save_model(model, str(directory / _FILE), save_as_external_data=True)
        return Saved(
            {
                "onnx_version": onnx.__version__,
                "data": _FILE,
                "providers": list(DEFAULT_PROVIDERS),
                "onnx_session_options": None,
                "code": None,
            },
            {"loader_module": self.loader_module, "data": _FILE},
            [pin("onnx"), pin("onnxruntime")],
        )

    def load(
        self,
        directory: Path,
        flavor_conf: Mapping[str, Any],
        pyfunc_conf: Mapping[str, Any],
        *,
        trusted_types: Collection[str] = (),
    ) -> Predictor:
        ort = require("onnxruntime", "running an ONNX model")
        path = model_file(directory, flavor_conf.get("data") or pyfunc_conf.get("data"))
        options = ort.SessionOptions()
        _apply_session_options(ort, options, flavor_conf.get("onnx_session_options") or {})
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=_providers(ort, flavor_conf)
        )
        return Predictor(session, _OnnxPredict(session))


def _providers(ort: Any, conf: Mapping[str, Any]) -> list[Any]:
    """The declared providers this onnxruntime build has (``[name, options]`` pairs come back
    from YAML as lists; onnxruntime wants tuples); CPU when none is available."""
    declared = conf.get("providers") or DEFAULT_PROVIDERS
    if isinstance(declared, str):
        declared = [declared]
    available = set(ort.get_available_providers())
    usable = [
        tuple(p) if isinstance(p, list) else p
        for p in declared
        if (p[0] if isinstance(p, list | tuple) and p else p) in available
    ]
    return usable or ["CPUExecutionProvider"]


def _apply_session_options(ort: Any, options: Any, conf: Mapping[str, Any]) -> None:
    """The ``onnx_session_options`` keys MLflow honours, applied the same way."""
    if value := conf.get("inter_op_num_threads"):
        options.inter_op_num_threads = int(value)
    if value := conf.get("intra_op_num_threads"):
        options.intra_op_num_threads = int(value)
    mode = str(conf.get("execution_mode") or "").upper()
    if mode == "SEQUENTIAL":
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    elif mode == "PARALLEL":
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    if value := conf.get("graph_optimization_level"):
        options.graph_optimization_level = ort.GraphOptimizationLevel(value)
    for key, value in (conf.get("extra_session_config") or {}).items():
        options.add_session_config_entry(str(key), str(value))


class _OnnxPredict:
    """Turns pyfunc input into an onnxruntime feed and the outputs back, as MLflow does."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.inputs = [(i.name, i.type) for i in session.get_inputs()]
        self.outputs = [o.name for o in session.get_outputs()]

    def __call__(self, data: Any) -> Any:
        import numpy as np
        import pandas as pd

        if isinstance(data, dict):
            feed = dict(data)
        elif isinstance(data, np.ndarray):
            if len(self.inputs) != 1:
                raise InvalidInput(
                    f"this ONNX model takes {len(self.inputs)} inputs "
                    f"({', '.join(n for n, _ in self.inputs)}); pass a dict or a DataFrame"
                )
            feed = {self.inputs[0][0]: data}
        elif isinstance(data, pd.DataFrame):
            if len(self.inputs) > 1:
                feed = {name: data[name].to_numpy() for name, _ in self.inputs}
            else:
                feed = {self.inputs[0][0]: data.to_numpy()}
        else:
            raise InvalidInput(
                f"an ONNX model takes a DataFrame, an array or a dict, got {type(data).__name__}"
            )
        for name, kind in self.inputs:
            value = feed.get(name)
            if kind == "tensor(float)" and getattr(value, "dtype", None) == np.float64:
                feed[name] = value.astype(np.float32)
        results = self.session.run(self.outputs, feed)
        if isinstance(data, pd.DataFrame):
            rows = len(data)
            return pd.DataFrame(
                {n: _column(r, rows) for n, r in zip(self.outputs, results, strict=True)}
            )
        return dict(zip(self.outputs, results, strict=True))


def _column(result: Any, rows: int) -> Any:
    """One output as a DataFrame column: flattened as MLflow does when that leaves one value
    per row; otherwise (class probabilities, say, where MLflow fails) one array per row."""
    import numpy as np

    array = np.asarray(result)
    flat = array.reshape(-1)
    return flat if len(flat) == rows else list(array)
