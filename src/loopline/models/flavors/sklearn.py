"""scikit-learn models as ``mlflow.sklearn`` stores them: ``model.pkl`` (pickle or cloudpickle)
or ``model.skops``, described by ``pickled_model``, ``sklearn_version``,
``serialization_format`` and ``skops_trusted_types``.

Pickle is the default because every estimator, custom ones included, survives it; skops is the
safer choice for models shared across trust boundaries (see :mod:`.serialization`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput
from loopline.models.flavors import Flavor, Predictor, Saved, defined_in, model_file, pin, require
from loopline.models.flavors import serialization as ser

__all__ = ["PREDICT_FUNCTIONS", "SklearnFlavor"]

# What MLflow's pyfunc_predict_fn may name: the method python_function's predict calls.
PREDICT_FUNCTIONS = frozenset(
    {"predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba", "score"}
)


class SklearnFlavor(Flavor):
    name = "sklearn"
    loader_module = "mlflow.sklearn"

    def matches(self, model: Any) -> bool:
        return defined_in(model, "sklearn") and hasattr(model, "predict")

    def save(
        self, model: Any, directory: Path, *, serialization_format: str | None = None
    ) -> Saved:
        if not callable(getattr(model, "predict", None)):
            raise InvalidInput(
                f"the sklearn flavor saves objects with a predict method; "
                f"{type(model).__name__} has none"
            )
        sklearn = require("sklearn", "saving a scikit-learn model", "scikit-learn")
        fmt = ser.check_format(serialization_format)
        name = ser.file_name(fmt)
        trusted = ser.dump(model, directory / name, fmt)
        pins = [pin("scikit-learn"), *ser.requirements(fmt)]
        for library in ("lightgbm", "xgboost"):  # their estimators pickled as sklearn models
            if defined_in(model, library):
                pins.append(pin(library))
        return Saved(
            {
                "pickled_model": name,
                "sklearn_version": sklearn.__version__,
                "serialization_format": fmt,
                "code": None,
                "skops_trusted_types": trusted,
            },
            {"loader_module": self.loader_module, "model_path": name, "predict_fn": "predict"},
            pins,
        )

    def load(
        self,
        directory: Path,
        flavor_conf: Mapping[str, Any],
        pyfunc_conf: Mapping[str, Any],
        *,
        trusted_types: Collection[str] = (),
    ) -> Predictor:
        fmt = str(flavor_conf.get("serialization_format") or ser.DEFAULT_FORMAT)
        relative = (
            pyfunc_conf.get("model_path") or flavor_conf.get("pickled_model") or ser.file_name(fmt)
        )
        model = ser.load(model_file(directory, relative), fmt, trusted_types=trusted_types)
        method = str(pyfunc_conf.get("predict_fn") or "predict")
        if method not in PREDICT_FUNCTIONS:
            raise InvalidInput(
                f"predict_fn {method!r} is not one of {', '.join(sorted(PREDICT_FUNCTIONS))}"
            )
        predict = getattr(model, method, None)
        if not callable(predict):
            raise InvalidInput(f"the object in {relative!r} has no {method} method")
        return Predictor(model, predict)
