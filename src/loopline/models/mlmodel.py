"""Writing models as MLflow ``MLmodel`` directories.

The directory holds the flavor's model file(s) (see :mod:`loopline.models.flavors`), ``MLmodel``,
``requirements.txt`` pinning the flavor's libraries, ``python_env.yaml`` and, when an example
is given, ``input_example.json``. ``MLmodel`` is YAML; we write it as JSON, which every YAML 1.2
parser (MLflow's included) reads, so Loopline needs no YAML dependency to produce models MLflow
can load.
"""

from __future__ import annotations

import json
import platform
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loopline._version import __version__
from loopline.errors import InvalidInput
from loopline.models.flavors import Flavor, get_flavor, pick_flavor
from loopline.models.signature import infer_schema, input_example_payload

__all__ = ["normalize_signature", "save_model", "save_sklearn_model"]

# Flavors whose loaded model predicts exactly as the object in memory does.
_SCORE_IN_MEMORY = frozenset({"sklearn", "lightgbm"})


def save_model(
    model: Any,
    path: str | Path,
    *,
    flavor: str | None = None,
    serialization_format: str | None = None,
    input_example: Any = None,
    output_example: Any = None,
    signature: Any = None,
    pip_requirements: Sequence[str] | None = None,
    run_id: str | None = None,
    artifact_path: str = "model",
) -> Path:
    """Write ``model`` as an MLflow model directory at ``path``; returns it.

    ``flavor`` (``sklearn``, ``xgboost``, ``lightgbm``, ``onnx``, ``python_function``) is picked
    from the model's class when None. ``serialization_format`` chooses pickle, cloudpickle or
    skops for scikit-learn-style models (ubj or json for XGBoost). ``signature`` (MLflow's
    ``{"inputs", "outputs", "params"}`` dict, or an ``mlflow.models.ModelSignature``) wins over
    the one inferred from ``input_example``; ``pip_requirements`` replaces the pinned defaults.
    """
    chosen: Flavor = pick_flavor(model) if flavor is None else get_flavor(flavor)
    explicit = normalize_signature(signature)
    requirements = _requirement_lines(pip_requirements)
    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    saved = chosen.save(model, target, serialization_format=serialization_format)
    python_version = platform.python_version()
    pyfunc = {
        **saved.pyfunc_conf,
        "env": {"virtualenv": "python_env.yaml"},
        "python_version": python_version,
    }
    flavors: dict[str, Any] = {"python_function": pyfunc}
    if chosen.name != "python_function":
        flavors[chosen.name] = saved.flavor_conf
    doc: dict[str, Any] = {
        "artifact_path": artifact_path,
        "flavors": flavors,
        "model_uuid": uuid.uuid4().hex,
        "loopline_version": __version__,
        "utc_time_created": time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime()),
    }
    if run_id:
        doc["run_id"] = run_id
    if explicit is not None:
        doc["signature"] = explicit
    elif input_example is not None and (inputs := infer_schema(input_example)) is not None:
        if output_example is None:
            output_example = _predict_example(model, chosen, target, saved, input_example)
        outputs = infer_schema(output_example) if output_example is not None else None
        doc["signature"] = {"inputs": inputs, "outputs": outputs, "params": None}
    if input_example is not None and (example := input_example_payload(input_example)):
        payload, info = example
        (target / "input_example.json").write_text(json.dumps(payload))
        doc["saved_input_example_info"] = info
    lines = requirements if requirements is not None else _dedupe(saved.requirements)
    (target / "requirements.txt").write_text("".join(f"{line}\n" for line in lines))
    env = {
        "python": python_version,
        "build_dependencies": ["pip"],
        "dependencies": ["-r requirements.txt"],
    }
    (target / "python_env.yaml").write_text(json.dumps(env, indent=2) + "\n")
    (target / "MLmodel").write_text(json.dumps(doc, indent=2) + "\n")
    return target


def save_sklearn_model(
    model: Any,
    path: str | Path,
    *,
    input_example: Any = None,
    output_example: Any = None,
    run_id: str | None = None,
    artifact_path: str = "model",
) -> Path:
    """Write ``model`` (anything picklable with a ``predict``) as an MLflow sklearn model,
    pickled: what autologging writes for every fitted estimator."""
    return save_model(
        model,
        path,
        flavor="sklearn",
        input_example=input_example,
        output_example=output_example,
        run_id=run_id,
        artifact_path=artifact_path,
    )


def normalize_signature(signature: Any) -> dict[str, Any] | None:
    """``signature`` as MLflow stores it in ``MLmodel``: ``inputs``/``outputs``/``params`` each a
    JSON string or None. Takes that dict (with lists in place of the strings too) or anything
    with ``to_dict()`` shaped so, like ``mlflow.models.ModelSignature``."""
    if signature is None:
        return None
    if not isinstance(signature, dict) and callable(getattr(signature, "to_dict", None)):
        signature = signature.to_dict()
    if not isinstance(signature, dict) or "inputs" not in signature:
        raise InvalidInput(
            "signature must be a dict with 'inputs' (and optionally 'outputs' and 'params') "
            f"or an mlflow ModelSignature, got {type(signature).__name__}"
        )
    unknown = set(signature) - {"inputs", "outputs", "params"}
    if unknown:
        raise InvalidInput(f"signature has unknown key(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for key in ("inputs", "outputs", "params"):
        value = signature.get(key)
        if isinstance(value, list | dict):
            value = json.dumps(value)
        elif value is not None and not isinstance(value, str):
            raise InvalidInput(f"signature {key!r} must be a JSON string or a list")
        elif isinstance(value, str):
            try:
                json.loads(value)
            except ValueError as exc:
                raise InvalidInput(f"signature {key!r} is not valid JSON: {exc}") from exc
        out[key] = value
    return out


def _predict_example(model: Any, chosen: Flavor, target: Path, saved: Any, example: Any) -> Any:
    """The model's output for its input example, for the output schema; None when it cannot
    score it. Scored as it will be served: estimators directly, boosters, ONNX graphs and
    python_function models through the flavor's loader (a DMatrix, a session, a context)."""
    try:
        if chosen.name in _SCORE_IN_MEMORY and callable(getattr(model, "predict", None)):
            return model.predict(example)
        predictor = chosen.load(target, saved.flavor_conf, saved.pyfunc_conf)
        return predictor.predict(example)
    except Exception:  # an example the model cannot score still documents the input
        return None


def _requirement_lines(pip_requirements: Sequence[str] | None) -> list[str] | None:
    if pip_requirements is None:
        return None
    if isinstance(pip_requirements, str | bytes) or not all(
        isinstance(line, str) for line in pip_requirements
    ):
        raise InvalidInput("pip_requirements must be a list of requirement strings")
    return [line.strip() for line in pip_requirements if line.strip()]


def _dedupe(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))
