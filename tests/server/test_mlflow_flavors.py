"""Model directories move both ways between Loopline and the official MLflow client.

Models Loopline writes (with ``save_model`` and through ``log_model``) load with
``mlflow.pyfunc.load_model``; models MLflow's own flavors write load with
``loopline.models.load``; both predict the same. This is a directory-format test, so MLflow
runs in this process against local directories (no tracking server), with telemetry off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

import loopline as ll
from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.models.mlmodel import save_model
from loopline.workspace import Workspace

RNG = np.random.default_rng(11)
X = RNG.random((30, 3))
FRAME = pd.DataFrame(X, columns=["a", "b", "c"])
Y = (X[:, 0] + X[:, 2] > 1).astype(int)
TARGET = X @ np.array([3.0, -1.0, 0.5])


class Doubler:
    """A plain class with predict(model_input): Loopline's generic python_function."""

    def predict(self, data: Any) -> np.ndarray:
        return np.asarray(data, dtype=float).sum(axis=1) * 2


@pytest.fixture(scope="module")
def mlflow() -> Iterator[ModuleType]:
    """The mlflow package, imported with telemetry off (it reads the switch at import)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("DO_NOT_TRACK", "true")
        import mlflow
        import mlflow.lightgbm
        import mlflow.onnx
        import mlflow.pyfunc
        import mlflow.sklearn
        import mlflow.xgboost

        yield mlflow


def values(out: Any) -> np.ndarray:
    """Predictions as one flat float array (ONNX answers a frame or a dict of outputs)."""
    if isinstance(out, pd.DataFrame):
        out = out.iloc[:, 0]
    elif isinstance(out, dict):
        out = next(iter(out.values()))
    return np.asarray(out, dtype=float).ravel()


def _onnx_linear() -> Any:
    return to_onnx(LinearRegression().fit(X, TARGET), X[:1].astype(np.float32))


OURS: dict[str, tuple[Callable[[], Any], dict[str, Any]]] = {
    "sklearn-pickle": (lambda: LogisticRegression().fit(FRAME, Y), {}),
    "sklearn-skops": (
        lambda: LogisticRegression().fit(FRAME, Y),
        {"serialization_format": "skops"},
    ),
    "xgboost-estimator": (lambda: xgb.XGBClassifier(n_estimators=3).fit(FRAME, Y), {}),
    "xgboost-booster": (lambda: xgb.train({}, xgb.DMatrix(FRAME, label=TARGET), 3), {}),
    "lightgbm-estimator": (
        lambda: lgb.LGBMClassifier(n_estimators=3, min_child_samples=2, verbose=-1).fit(FRAME, Y),
        {},
    ),
    "lightgbm-booster": (
        lambda: lgb.train({"verbose": -1, "min_data_in_leaf": 2}, lgb.Dataset(FRAME, TARGET), 3),
        {},
    ),
    "onnx": (_onnx_linear, {}),
    "python_function": (Doubler, {}),
}


@pytest.mark.parametrize("case", OURS)
def test_a_model_saved_here_loads_in_mlflow_and_predicts_the_same(
    mlflow: ModuleType, tmp_path: Path, case: str
) -> None:
    build, options = OURS[case]
    path = save_model(build(), tmp_path / "model", input_example=FRAME.head(3), **options)
    theirs = mlflow.pyfunc.load_model(str(path))
    ours = ll.models.load(path)
    assert theirs.metadata.signature is not None
    np.testing.assert_allclose(values(theirs.predict(FRAME)), values(ours.predict(FRAME)))
    assert len(values(ours.predict(FRAME))) == len(FRAME)


def test_a_model_logged_through_the_api_loads_in_mlflow(mlflow: ModuleType, tmp_path: Path) -> None:
    """log_model → register → download: the registered files are an MLflow model."""
    ws = Workspace(Settings.for_home(tmp_path / "ws", actor="tester"))
    model = xgb.XGBRegressor(n_estimators=3).fit(FRAME, TARGET)
    with ll.use_workspace(ws):
        with ll.start_run():
            ll.models.log_model(
                model, "model", input_example=FRAME.head(2), registered_model_name="reg"
            )
        local = ll.models.download("models:/reg/1", tmp_path / "copy")
    ws.close()
    loaded = mlflow.pyfunc.load_model(str(local))
    assert loaded.metadata.flavors["xgboost"]["model_class"] == "xgboost.sklearn.XGBRegressor"
    np.testing.assert_allclose(loaded.predict(FRAME), model.predict(FRAME), rtol=1e-6)


def _mlflow_python_model(mlflow: ModuleType) -> Any:
    class Tripler(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return np.asarray(model_input, dtype=float).sum(axis=1) * 3

    return Tripler()


def _add_one(model_input: Any) -> Any:
    return np.asarray(model_input, dtype=float).sum(axis=1) + 1


# Given requirements spare MLflow inferring them, which loads each model in a subprocess.
FIXED = {"pip_requirements": ["numpy"]}
THEIRS: dict[str, Callable[[ModuleType, str], Any]] = {
    "xgboost": lambda m, p: m.xgboost.save_model(
        xgb.XGBClassifier(n_estimators=3).fit(FRAME, Y), p, **FIXED
    ),
    "lightgbm-booster": lambda m, p: m.lightgbm.save_model(
        lgb.train({"verbose": -1, "min_data_in_leaf": 2}, lgb.Dataset(FRAME, TARGET), 3),
        p,
        **FIXED,
    ),
    "lightgbm-estimator-skops": lambda m, p: m.lightgbm.save_model(
        lgb.LGBMRegressor(n_estimators=3, min_child_samples=2, verbose=-1).fit(FRAME, TARGET),
        p,
        serialization_format="skops",
        **FIXED,
    ),
    "onnx": lambda m, p: m.onnx.save_model(_onnx_linear(), p, **FIXED),
    "pyfunc-python-model": lambda m, p: m.pyfunc.save_model(
        p, python_model=_mlflow_python_model(m), **FIXED
    ),
    "pyfunc-function": lambda m, p: m.pyfunc.save_model(
        p, python_model=_add_one, input_example=FRAME.head(2), **FIXED
    ),
    "sklearn-cloudpickle": lambda m, p: m.sklearn.save_model(
        LogisticRegression().fit(FRAME, Y), p, serialization_format="cloudpickle", **FIXED
    ),
    "sklearn-skops": lambda m, p: m.sklearn.save_model(
        LogisticRegression().fit(FRAME, Y), p, serialization_format="skops", **FIXED
    ),
}


@pytest.mark.parametrize("case", THEIRS)
def test_a_model_saved_by_mlflow_loads_here_and_predicts_the_same(
    mlflow: ModuleType, tmp_path: Path, case: str
) -> None:
    path = tmp_path / "model"
    THEIRS[case](mlflow, str(path))
    theirs = mlflow.pyfunc.load_model(str(path))
    ours = ll.models.load(str(path))
    expected = values(theirs.predict(FRAME))
    np.testing.assert_allclose(values(ours.predict(FRAME)), expected)
    np.testing.assert_allclose(values(ours.predict(X)), expected)


def test_an_mlflow_skops_forest_needs_its_tree_type_trusted_here_too(
    mlflow: ModuleType, tmp_path: Path
) -> None:
    """MLflow trusts the types its own MLmodel lists; Loopline trusts only what the caller
    names, so a crafted MLmodel cannot widen what a skops file may build."""
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(FRAME, Y)
    trusted = ["sklearn.tree._tree.Tree"]
    mlflow.sklearn.save_model(
        forest,
        str(tmp_path / "rf"),
        serialization_format="skops",
        skops_trusted_types=trusted,
        **FIXED,
    )
    with pytest.raises(InvalidInput, match="holds types Loopline does not trust"):
        ll.models.load(tmp_path / "rf")
    loaded = ll.models.load(tmp_path / "rf", skops_trusted_types=trusted)
    assert loaded.predict(FRAME).tolist() == forest.predict(FRAME).tolist()
