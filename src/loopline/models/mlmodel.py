"""Writing models as MLflow ``MLmodel`` directories.

``MLmodel`` is YAML; we write it as JSON, which every YAML 1.2 parser (MLflow's included) reads,
so Loopline needs no YAML dependency to produce models MLflow can load.
"""

from __future__ import annotations

import json
import pickle
import platform
import time
import uuid
from pathlib import Path
from typing import Any

from loopline._version import __version__
from loopline.models.signature import infer_schema, input_example_payload

__all__ = ["save_sklearn_model"]


def save_sklearn_model(
    model: Any,
    path: str | Path,
    *,
    input_example: Any = None,
    output_example: Any = None,
    run_id: str | None = None,
    artifact_path: str = "model",
) -> Path:
    """Write ``model`` (anything picklable with a ``predict``) as an MLflow sklearn model."""
    import sklearn

    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    with (target / "model.pkl").open("wb") as fh:
        pickle.dump(model, fh, protocol=pickle.DEFAULT_PROTOCOL)
    python_version = platform.python_version()
    pins = [f"scikit-learn=={sklearn.__version__}"]
    for extra in ("lightgbm", "xgboost"):
        module = type(model).__module__.split(".")[0]
        if module == extra:
            import importlib.metadata

            pins.append(f"{extra}=={importlib.metadata.version(extra)}")
    (target / "requirements.txt").write_text("\n".join(pins) + "\n")
    (target / "python_env.yaml").write_text(
        json.dumps(
            {
                "python": python_version,
                "build_dependencies": ["pip"],
                "dependencies": ["-r requirements.txt"],
            },
            indent=2,
        )
        + "\n"
    )
    doc: dict[str, Any] = {
        "artifact_path": artifact_path,
        "flavors": {
            "python_function": {
                "env": {"virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn",
                "model_path": "model.pkl",
                "predict_fn": "predict",
                "python_version": python_version,
            },
            "sklearn": {
                "code": None,
                "pickled_model": "model.pkl",
                "serialization_format": "pickle",
                "sklearn_version": sklearn.__version__,
            },
        },
        "model_uuid": uuid.uuid4().hex,
        "loopline_version": __version__,
        "utc_time_created": time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime()),
    }
    if run_id:
        doc["run_id"] = run_id
    if input_example is not None:
        inputs = infer_schema(input_example)
        if inputs is not None:
            outputs = infer_schema(output_example) if output_example is not None else None
            doc["signature"] = {"inputs": inputs, "outputs": outputs, "params": None}
        example = input_example_payload(input_example)
        if example is not None:
            payload, info = example
            (target / "input_example.json").write_text(json.dumps(payload))
            doc["saved_input_example_info"] = info
    (target / "MLmodel").write_text(json.dumps(doc, indent=2) + "\n")
    return target
