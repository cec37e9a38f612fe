"""The object Loopline pickles for a generic python_function model: a plain object with
``predict`` dressed as the ``mlflow.pyfunc.PythonModel`` that ``mlflow.pyfunc.model`` expects.

This module imports nothing from Loopline (and nothing outside the standard library): it is
pickled *by value* with cloudpickle, so the model file carries the class itself and MLflow
loads it where Loopline is not installed.
"""

from __future__ import annotations

import inspect
import types
from typing import Any

__all__ = ["PredictWrapper", "takes_context"]


def takes_context(method: Any) -> bool:
    """MLflow's rule: ``predict(context, model_input)`` when a parameter is named ``context`` or
    there are exactly two besides ``params``; else ``predict(model_input)``."""
    try:
        names = [n for n in inspect.signature(method).parameters if n not in ("self", "params")]
    except (TypeError, ValueError):  # builtins without a signature take the input alone
        return False
    return "context" in names or len(names) == 2


class PredictWrapper:
    """Holds the user's object; ``predict`` passes the context only to a model that takes it."""

    loopline_wrapper = True  # lets Loopline's loader hand back the wrapped object

    def __init__(self, model: Any) -> None:
        self.model = model

    def load_context(self, context: Any) -> None:
        hook = getattr(self.model, "load_context", None)
        if callable(hook):
            hook(context)

    @property
    def predict_type_hints(self) -> Any:
        # MLflow reads .input to convert DataFrames for list[str] models; ours take data as is.
        return types.SimpleNamespace(input=None, output=None)

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        method = self.model.predict
        kwargs = {"params": params} if params is not None and _accepts(method, "params") else {}
        if takes_context(method):
            return method(context, model_input, **kwargs)
        return method(model_input, **kwargs)


def _accepts(method: Any, name: str) -> bool:
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
