"""The three ways MLflow serializes scikit-learn-style objects: ``pickle``, ``cloudpickle`` and
``skops``, with the file names and ``skops_trusted_types`` MLflow uses.

Trust: ``pickle`` and ``cloudpickle`` run code from the file while loading it, so a model in
either format is as trustworthy as whoever could write to the registry it came from. ``skops``
rebuilds only types on an allow-list and refuses the rest. MLflow reads that allow-list from the
model's own ``MLmodel`` (so a crafted model can allow anything); Loopline does not: it trusts
skops' defaults, a few library types listed below, and what the caller passes to ``load``.
"""

from __future__ import annotations

import pickle
from collections.abc import Collection
from pathlib import Path
from typing import Any

from loopline.errors import ConfigError, InvalidInput
from loopline.models.flavors import pin, require

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "SKOPS_SAFE_TYPES",
    "check_format",
    "dump",
    "file_name",
    "load",
    "requirements",
]

FORMATS = ("pickle", "cloudpickle", "skops")
DEFAULT_FORMAT = "pickle"
# Types skops does not trust by default that Loopline does: LightGBM's estimators, the set
# MLflow's own mlflow.lightgbm trusts (its default format for them is skops). Not, for example,
# sklearn.tree._tree.Tree: skops warns that a crafted tree can make predict read out of bounds,
# so tree and forest models load only when the caller names that type.
SKOPS_SAFE_TYPES = frozenset(
    {
        "collections.OrderedDict",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.sklearn.LGBMRanker",
    }
)


def check_format(serialization_format: str | None) -> str:
    """The format to write (``pickle`` when None), or InvalidInput naming the choices."""
    fmt = serialization_format or DEFAULT_FORMAT
    if fmt not in FORMATS:
        raise InvalidInput(
            f"unknown serialization_format {fmt!r}; use one of: {', '.join(FORMATS)}"
        )
    return fmt


def file_name(fmt: str) -> str:
    """MLflow's file name for a model in ``fmt``."""
    return "model.skops" if fmt == "skops" else "model.pkl"


def requirements(fmt: str) -> list[str]:
    """Extra pins a model in ``fmt`` needs to load."""
    return [pin(fmt)] if fmt in ("cloudpickle", "skops") else []


def dump(obj: Any, path: Path, fmt: str) -> list[str] | None:
    """Write ``obj`` to ``path``; for skops, return the types the file holds beyond skops'
    defaults (MLflow's ``skops_trusted_types``, which its loader needs)."""
    if fmt == "skops":
        sio = require("skops.io", "saving in the skops format", "skops")
        sio.dump(obj, path)
        return sorted(sio.get_untrusted_types(file=path))
    lib: Any = pickle
    if fmt == "cloudpickle":
        lib = require("cloudpickle", "saving in the cloudpickle format")
    with path.open("wb") as handle:
        # The default protocol, not the newest: what MLflow writes, readable by older Pythons.
        lib.dump(obj, handle, protocol=pickle.DEFAULT_PROTOCOL)
    return None


def load(path: Path, fmt: str, *, trusted_types: Collection[str] = ()) -> Any:
    """Read an object written in ``fmt``. A skops file holding a type neither skops, Loopline
    (``SKOPS_SAFE_TYPES``) nor the caller trusts is refused, naming the types."""
    if fmt not in FORMATS:
        raise InvalidInput(
            f"{path.name}: unknown serialization_format {fmt!r}; Loopline reads "
            f"{', '.join(FORMATS)}"
        )
    if fmt == "skops":
        sio = require("skops.io", "loading a skops-format model", "skops")
        found = set(sio.get_untrusted_types(file=path))
        refused = sorted(found - SKOPS_SAFE_TYPES - set(trusted_types))
        if refused:
            raise InvalidInput(
                f"{path.name} holds types Loopline does not trust: {', '.join(refused)}; if "
                f"you trust where the model comes from, load it with skops_trusted_types="
                f"{refused!r}"
            )
        return sio.load(path, trusted=sorted(found))
    if fmt == "cloudpickle":
        require("cloudpickle", "loading a cloudpickle-format model")
    with path.open("rb") as handle:
        try:
            return pickle.load(handle)  # cloudpickle's output is read by pickle itself
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"loading {path.name} needs the Python module {exc.name!r}, which cannot be "
                "imported; install the package that provides it"
            ) from exc
