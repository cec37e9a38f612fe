"""Model flavors: how each kind of model is written into, and read back from, an ``MLmodel``
directory, file for file as MLflow's own flavor does it, so models move both ways.

A flavor knows one library. ``save`` writes the model file(s) and returns the flavor's
``MLmodel`` section, its ``python_function`` section and the pip requirements that pin the
library; ``load`` reads them back into a :class:`Predictor` whose ``predict`` behaves like
MLflow's pyfunc wrapper for that flavor. The libraries themselves (xgboost, lightgbm, onnx,
onnxruntime, skops, cloudpickle) are imported only when a flavor needs them; a missing one is a
:class:`~loopline.errors.ConfigError` naming the package to install.

``FLAVORS`` lists the flavors in the order the model object is matched against them (most
specific first: an XGBoost or LightGBM estimator is also a scikit-learn estimator, and anything
with ``predict`` is a python_function); ``LOADER_MODULES`` maps the ``loader_module`` an
``MLmodel`` names to the flavor that loads it.
"""

from __future__ import annotations

import abc
import functools
import importlib
import importlib.metadata
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, NamedTuple

from loopline.errors import ConfigError, InvalidInput

__all__ = [
    "FLAVORS",
    "LOADER_MODULES",
    "Flavor",
    "Predictor",
    "Saved",
    "class_path",
    "defined_in",
    "flavor_for_loader",
    "get_flavor",
    "model_file",
    "pick_flavor",
    "pin",
    "require",
]

# Flavor name (the MLmodel key) -> "module:Class" under loopline.models.flavors, in the order
# a model object is matched when no flavor is named.
FLAVORS: dict[str, str] = {
    "onnx": "onnx:OnnxFlavor",
    "xgboost": "xgboost:XGBoostFlavor",
    "lightgbm": "lightgbm:LightGBMFlavor",
    "sklearn": "sklearn:SklearnFlavor",
    "python_function": "pyfunc:PythonFunctionFlavor",
}
# python_function loader_module -> flavor name. "loopline.models" is what early Loopline
# versions wrote for pickled scikit-learn models.
LOADER_MODULES: dict[str, str] = {
    "mlflow.sklearn": "sklearn",
    "loopline.models": "sklearn",
    "mlflow.xgboost": "xgboost",
    "mlflow.lightgbm": "lightgbm",
    "mlflow.onnx": "onnx",
    "mlflow.pyfunc.model": "python_function",
}


class Saved(NamedTuple):
    """What a flavor's ``save`` wrote: its ``MLmodel`` section, the ``python_function``
    section (without the environment keys, which the caller adds) and pinned requirements."""

    flavor_conf: dict[str, Any]
    pyfunc_conf: dict[str, Any]
    requirements: list[str]


class Predictor:
    """A loaded model ready to score: ``predict`` adapts the input the way MLflow's pyfunc
    wrapper for the flavor does (an XGBoost booster gets a DMatrix, an ONNX session a feed
    dict), and ``get_raw_model`` hands back the library's own object."""

    def __init__(self, raw: Any, predict: Callable[[Any], Any]) -> None:
        self.raw = raw
        self._predict = predict

    def predict(self, data: Any) -> Any:
        return self._predict(data)

    def get_raw_model(self) -> Any:
        return self.raw


class Flavor(abc.ABC):
    """One library's way of storing models. Stateless: one instance serves every call."""

    name: ClassVar[str]
    """The key under ``flavors`` in ``MLmodel`` (``sklearn``, ``xgboost``, ...)."""
    loader_module: ClassVar[str]
    """The ``python_function`` loader MLflow uses for this flavor."""

    @abc.abstractmethod
    def matches(self, model: Any) -> bool:
        """Whether this flavor is the natural one for ``model``; imports nothing."""

    @abc.abstractmethod
    def save(
        self, model: Any, directory: Path, *, serialization_format: str | None = None
    ) -> Saved:
        """Write ``model``'s files into ``directory`` (which exists). Raises InvalidInput when
        the model or the format does not fit this flavor."""

    @abc.abstractmethod
    def load(
        self,
        directory: Path,
        flavor_conf: Mapping[str, Any],
        pyfunc_conf: Mapping[str, Any],
        *,
        trusted_types: Collection[str] = (),
    ) -> Predictor:
        """Read the model back. ``flavor_conf`` is empty when the ``MLmodel`` has only the
        ``python_function`` section; ``trusted_types`` widens what a skops file may hold."""


@functools.cache
def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``; InvalidInput naming the known ones otherwise."""
    target = FLAVORS.get(name)
    if target is None:
        raise InvalidInput(f"unknown model flavor {name!r}; use one of: {', '.join(FLAVORS)}")
    module, _, cls = target.partition(":")
    flavor: Flavor = getattr(importlib.import_module(f"{__name__}.{module}"), cls)()
    return flavor


def pick_flavor(model: Any) -> Flavor:
    """The first flavor in ``FLAVORS`` that matches ``model``."""
    for name in FLAVORS:
        flavor = get_flavor(name)
        if flavor.matches(model):
            return flavor
    raise InvalidInput(
        f"cannot save a model of type {type(model).__name__}: it is not a scikit-learn, "
        "XGBoost, LightGBM or ONNX model and has no predict method"
    )


def flavor_for_loader(loader_module: str, where: str = "the model") -> Flavor:
    """The flavor that loads models whose ``python_function`` names ``loader_module``."""
    name = LOADER_MODULES.get(loader_module)
    if name is None:
        raise InvalidInput(
            f"{where} needs the python_function loader {loader_module!r}, which Loopline does "
            f"not support; supported loaders: {', '.join(sorted(LOADER_MODULES))}"
        )
    return get_flavor(name)


def require(module: str, purpose: str, package: str | None = None) -> ModuleType:
    """Import an optional library, or say which package to install and why it is needed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pip = package or module
        raise ConfigError(
            f"{purpose} needs the {pip!r} package, which cannot be imported; "
            f"install it with: pip install {pip}"
        ) from exc


def pin(package: str) -> str:
    """``package==<installed version>``, or the bare name when it is not installed here."""
    try:
        return f"{package}=={importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        return package


def defined_in(model: Any, package: str) -> bool:
    """Whether ``model``'s class, or a base class, comes from ``package`` (without importing
    it, so matching never loads an optional library)."""
    return any(
        cls.__module__ == package or cls.__module__.startswith(f"{package}.")
        for cls in type(model).__mro__
    )


def class_path(model: Any) -> str:
    """``module.ClassName`` as MLflow records it in ``model_class``."""
    return f"{type(model).__module__}.{type(model).__name__}"


def model_file(directory: Path, relative: Any, what: str = "model file") -> Path:
    """``directory / relative``, refusing names that are missing or point outside the model
    directory (an ``MLmodel`` from elsewhere must not make us read ``/etc/...``)."""
    if not isinstance(relative, str) or not relative:
        raise InvalidInput(f"the MLmodel in {directory} does not name its {what}")
    path = (directory / relative).resolve()
    if not path.is_relative_to(directory.resolve()) or not path.exists():
        raise InvalidInput(f"{what} {relative!r} is missing or outside {directory}")
    return path
