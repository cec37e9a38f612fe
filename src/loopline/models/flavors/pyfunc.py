"""Generic python_function models, stored as ``mlflow.pyfunc.model`` stores a ``PythonModel``:
``python_model.pkl`` written with cloudpickle (``cloudpickle_version`` recorded), loaded by
``loader_module: mlflow.pyfunc.model``, with optional ``artifacts`` and
``python_model_compression``.

Any object with ``predict`` can be saved this way. An MLflow ``PythonModel`` is pickled as it
is; anything else is wrapped in :class:`~.predict_wrapper.PredictWrapper`, pickled by value so
MLflow can load it without Loopline. ``predict`` may take ``(model_input)`` or, like a
PythonModel, ``(context, model_input)``: both are called correctly, here and in MLflow.
Unpickling runs code from the file: load such models only from a registry you trust.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import importlib
import importlib.metadata
import lzma
import pickle
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline.errors import ConfigError, InvalidInput
from loopline.models.flavors import Flavor, Predictor, Saved, model_file, pin, predict_wrapper
from loopline.models.flavors.predict_wrapper import PredictWrapper, takes_context

__all__ = ["PythonFunctionFlavor", "PythonModelContext"]

_FILE = "python_model.pkl"
# MLflow's python_model_compression values and their openers.
_OPENERS: dict[str, Callable[..., Any]] = {"gzip": gzip.open, "bzip2": bz2.open, "lzma": lzma.open}


@dataclass
class PythonModelContext:
    """What ``load_context`` and a context-taking ``predict`` receive, shaped like MLflow's:
    ``artifacts`` maps each name to a local file path inside the model directory."""

    artifacts: dict[str, str] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)


class PythonFunctionFlavor(Flavor):
    name = "python_function"
    loader_module = "mlflow.pyfunc.model"

    def matches(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def save(
        self, model: Any, directory: Path, *, serialization_format: str | None = None
    ) -> Saved:
        if not self.matches(model):
            raise InvalidInput(
                f"a python_function model needs a predict method; {type(model).__name__} has none"
            )
        if serialization_format not in (None, "cloudpickle"):
            raise InvalidInput("python_function models are saved with cloudpickle")
        is_python_model = any(
            c.__module__ == "mlflow.pyfunc.model" and c.__name__ == "PythonModel"
            for c in type(model).__mro__
        )
        obj = model if is_python_model else PredictWrapper(model)
        conf: dict[str, Any] = {"loader_module": self.loader_module, "python_model": _FILE}
        try:
            cloudpickle: Any = importlib.import_module("cloudpickle")
        except ImportError:
            cloudpickle = None
        lib: Any = pickle
        if cloudpickle is not None:
            cloudpickle.register_pickle_by_value(predict_wrapper)  # idempotent, see module doc
            conf["cloudpickle_version"] = cloudpickle.__version__
            lib = cloudpickle
        try:
            with (directory / _FILE).open("wb") as handle:
                lib.dump(obj, handle, protocol=pickle.DEFAULT_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"cannot pickle {type(model).__name__}: {exc}") from exc
        conf.update(code=None, streamable=False)
        # Without cloudpickle the wrapper is pickled by reference: loading needs Loopline.
        pins = [pin("cloudpickle") if cloudpickle is not None else pin("loopline")]
        pins += _pins_for(model)
        return Saved({}, conf, pins)

    def load(
        self,
        directory: Path,
        flavor_conf: Mapping[str, Any],
        pyfunc_conf: Mapping[str, Any],
        *,
        trusted_types: Collection[str] = (),
    ) -> Predictor:
        if not pyfunc_conf.get("python_model"):
            if pyfunc_conf.get("model_code_path"):
                raise InvalidInput(
                    f"the model at {directory} is an MLflow model-from-code (it runs "
                    f"{pyfunc_conf['model_code_path']!r} to build itself); Loopline loads "
                    "pickled python_function models only"
                )
            raise InvalidInput(f"the python_function model at {directory} names no python_model")
        path = model_file(directory, pyfunc_conf["python_model"])
        python_model = _unpickle(path, pyfunc_conf.get("python_model_compression"))
        artifacts = {
            name: str(model_file(directory, (info or {}).get("path"), f"artifact {name!r}"))
            for name, info in (pyfunc_conf.get("artifacts") or {}).items()
        }
        context = PythonModelContext(artifacts, dict(pyfunc_conf.get("model_config") or {}))
        if callable(getattr(python_model, "load_context", None)):
            python_model.load_context(context=context)
        predict = python_model.predict
        wrapped = getattr(python_model, "loopline_wrapper", False)
        raw = python_model.model if wrapped else python_model
        if takes_context(predict):
            return Predictor(raw, lambda data: predict(context, data))
        return Predictor(raw, predict)


def _unpickle(path: Path, compression: Any) -> Any:
    if compression and compression not in _OPENERS:
        raise InvalidInput(
            f"python_model_compression {compression!r} is not one of {', '.join(_OPENERS)}"
        )
    try:  # cloudpickle's files refer to its helpers; plain pickle files load without it
        importlib.import_module("cloudpickle")
    except ImportError:
        pass
    opener = _OPENERS[compression] if compression else open
    with opener(path, "rb") as handle:
        try:
            return pickle.load(handle)
        except ModuleNotFoundError as exc:
            package = "cloudpickle" if exc.name == "cloudpickle" else None
            hint = f"pip install {package}" if package else "install the package that provides it"
            raise ConfigError(
                f"loading {path.name} needs the Python module {exc.name!r}, which cannot be "
                f"imported; {hint}"
            ) from exc


def _pins_for(model: Any) -> list[str]:
    """Pins for the installed distributions the model's class and its bases come from (a
    project's own package, mlflow for a PythonModel); none for scripts and the stdlib."""
    tops = {cls.__module__.split(".")[0] for cls in type(model).__mro__}
    tops -= {"__main__", "builtins", "loopline", *sys.stdlib_module_names}
    dists = {d for top in tops for d in _distributions().get(top, [])}
    return [pin(d) for d in sorted(dists)]


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()  # scans site-packages once
