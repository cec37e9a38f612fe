"""XGBoost models as ``mlflow.xgboost`` stores them: the library's own file (``model.ubj`` by
default, ``model.json`` on request), described by ``xgb_version``, ``data``, ``model_class`` and
``model_format``. No pickle: the file holds trees, not code.

Loading instantiates ``model_class`` and calls its ``load_model``; only classes from the
xgboost package are accepted, so an ``MLmodel`` cannot make us construct anything else.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput
from loopline.models.flavors import (
    Flavor,
    Predictor,
    Saved,
    class_path,
    defined_in,
    model_file,
    pin,
    require,
)

__all__ = ["MODEL_FORMATS", "XGBoostFlavor"]

MODEL_FORMATS = ("ubj", "json")


class XGBoostFlavor(Flavor):
    name = "xgboost"
    loader_module = "mlflow.xgboost"

    def matches(self, model: Any) -> bool:
        return defined_in(model, "xgboost")

    def save(
        self, model: Any, directory: Path, *, serialization_format: str | None = None
    ) -> Saved:
        xgb = require("xgboost", "saving an XGBoost model")
        if not isinstance(model, xgb.Booster | xgb.XGBModel):
            raise InvalidInput(
                f"the xgboost flavor saves xgboost.Booster and XGBoost estimators, not "
                f"{type(model).__name__}"
            )
        fmt = serialization_format or "ubj"
        if fmt not in MODEL_FORMATS:
            raise InvalidInput(
                f"XGBoost models are saved as {' or '.join(MODEL_FORMATS)}, not {fmt!r}"
            )
        name = f"model.{fmt}"
        model.save_model(str(directory / name))
        pins = [pin("xgboost")]
        if isinstance(model, xgb.XGBModel):
            pins.append(pin("scikit-learn"))  # the estimator classes import it
        return Saved(
            {
                "xgb_version": xgb.__version__,
                "data": name,
                "model_class": class_path(model),
                "model_format": fmt,
                "code": None,
            },
            {"loader_module": self.loader_module, "data": name},
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
        xgb = require("xgboost", "loading an XGBoost model")
        path = model_file(directory, flavor_conf.get("data") or pyfunc_conf.get("data"))
        model_class = str(flavor_conf.get("model_class") or "xgboost.core.Booster")
        module, _, cls_name = model_class.rpartition(".")
        if module != "xgboost" and not module.startswith("xgboost."):
            raise InvalidInput(f"model_class {model_class!r} is not an XGBoost class")
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError) as exc:
            raise InvalidInput(
                f"model_class {model_class!r} does not exist in xgboost {xgb.__version__}"
            ) from exc
        model = cls()
        model.load_model(str(path))
        if isinstance(model, xgb.Booster):
            # As mlflow.xgboost: a booster scores a DMatrix and checks the feature names.
            def predict(data: Any) -> Any:
                return model.predict(xgb.DMatrix(data), validate_features=True)

            return Predictor(model, predict)
        if isinstance(model, xgb.XGBModel):
            return Predictor(model, lambda data: model.predict(data, validate_features=True))
        return Predictor(model, model.predict)
