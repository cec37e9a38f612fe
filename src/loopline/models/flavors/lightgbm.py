"""LightGBM models as ``mlflow.lightgbm`` stores them: a ``lightgbm.Booster`` as the library's
text file ``model.lgb``; a scikit-learn-API estimator (``LGBMClassifier``, ...) serialized like
a scikit-learn model (``model.pkl`` or ``model.skops``). The flavor section holds
``lgb_version``, ``data``, ``model_class``, ``serialization_format`` and
``skops_trusted_types``.
"""

from __future__ import annotations

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
from loopline.models.flavors import serialization as ser

__all__ = ["BOOSTER_CLASS", "LightGBMFlavor"]

BOOSTER_CLASS = "lightgbm.basic.Booster"
# MLflow wrote sklearn-API models with cloudpickle before it recorded the format.
_LEGACY_FORMAT = "cloudpickle"


class LightGBMFlavor(Flavor):
    name = "lightgbm"
    loader_module = "mlflow.lightgbm"

    def matches(self, model: Any) -> bool:
        return defined_in(model, "lightgbm")

    def save(
        self, model: Any, directory: Path, *, serialization_format: str | None = None
    ) -> Saved:
        lgb = require("lightgbm", "saving a LightGBM model")
        conf: dict[str, Any] = {"lgb_version": lgb.__version__, "model_class": class_path(model)}
        pins = [pin("lightgbm")]
        if isinstance(model, lgb.Booster):
            if serialization_format is not None:
                raise InvalidInput(
                    "a LightGBM Booster is saved in its own text format; serialization_format "
                    "applies to scikit-learn-API models only"
                )
            name = "model.lgb"
            model.save_model(str(directory / name))
            conf.update(serialization_format=None, skops_trusted_types=None)
        elif isinstance(model, lgb.LGBMModel):
            fmt = ser.check_format(serialization_format)
            name = ser.file_name(fmt)
            trusted = ser.dump(model, directory / name, fmt)
            conf.update(serialization_format=fmt, skops_trusted_types=trusted)
            pins += [pin("scikit-learn"), *ser.requirements(fmt)]
        else:
            raise InvalidInput(
                f"the lightgbm flavor saves lightgbm.Booster and LGBM estimators, not "
                f"{type(model).__name__}"
            )
        conf.update(data=name, code=None)
        return Saved(conf, {"loader_module": self.loader_module, "data": name}, pins)

    def load(
        self,
        directory: Path,
        flavor_conf: Mapping[str, Any],
        pyfunc_conf: Mapping[str, Any],
        *,
        trusted_types: Collection[str] = (),
    ) -> Predictor:
        path = model_file(directory, flavor_conf.get("data") or pyfunc_conf.get("data"))
        if str(flavor_conf.get("model_class") or BOOSTER_CLASS) == BOOSTER_CLASS:
            lgb = require("lightgbm", "loading a LightGBM model")
            model = lgb.Booster(model_file=str(path))
        else:
            require("lightgbm", "loading a LightGBM model")
            fmt = str(flavor_conf.get("serialization_format") or _LEGACY_FORMAT)
            model = ser.load(path, fmt, trusted_types=trusted_types)
        return Predictor(model, model.predict)
