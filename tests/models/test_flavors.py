"""Every flavor goes through log → register → alias → load and predicts as the original did;
formats, wrappers and failures are explicit and named."""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
from loopline.errors import ConfigError, InvalidInput, NotFound
from loopline.models.flavors import pin
from loopline.models.mlmodel import save_model
from loopline.workspace import Workspace

RNG = np.random.default_rng(7)
X = RNG.random((40, 3))
FRAME = pd.DataFrame(X, columns=["a", "b", "c"])
Y = (X[:, 0] + X[:, 1] > 1).astype(int)
TARGET = X @ np.array([1.0, 2.0, 3.0])


class Summer:
    """A plain object with predict(model_input): the generic python_function case."""

    def predict(self, data: Any) -> np.ndarray:
        return np.asarray(data, dtype=float).sum(axis=1)


class ContextSummer:
    """predict(context, model_input), like mlflow.pyfunc.PythonModel, without inheriting it."""

    def __init__(self) -> None:
        self.loaded_with: Any = None

    def load_context(self, context: Any) -> None:
        self.loaded_with = context

    def predict(self, context: Any, model_input: Any) -> np.ndarray:
        assert context is self.loaded_with
        return np.asarray(model_input, dtype=float).sum(axis=1) * 2


def values(out: Any) -> np.ndarray:
    """Predictions as one flat array, whatever the flavor returns (ONNX: the first output)."""
    if isinstance(out, pd.DataFrame):
        out = out.iloc[:, 0]
    elif isinstance(out, dict):
        out = next(iter(out.values()))
    return np.asarray(out).ravel()


@dataclass
class Case:
    build: Callable[[], Any]
    expected: Callable[[Any], np.ndarray]
    """The original model's own predictions on FRAME."""
    flavor: str
    model_file: str
    conf_keys: set[str]
    pins: list[str]
    options: dict[str, Any]


_SKLEARN_KEYS = {
    "pickled_model",
    "sklearn_version",
    "serialization_format",
    "code",
    "skops_trusted_types",
}
_LGB_KEYS = {"lgb_version", "data", "model_class", "serialization_format"}
_LGB_KEYS |= {"skops_trusted_types", "code"}


def _logistic() -> LogisticRegression:
    return LogisticRegression().fit(FRAME, Y)


CASES = {
    "sklearn-pickle": Case(
        _logistic,
        lambda m: m.predict(FRAME),
        "sklearn",
        "model.pkl",
        _SKLEARN_KEYS,
        ["scikit-learn"],
        {},
    ),
    "sklearn-skops": Case(
        _logistic,
        lambda m: m.predict(FRAME),
        "sklearn",
        "model.skops",
        _SKLEARN_KEYS,
        ["scikit-learn", "skops"],
        {"serialization_format": "skops"},
    ),
    "sklearn-cloudpickle": Case(
        _logistic,
        lambda m: m.predict(FRAME),
        "sklearn",
        "model.pkl",
        _SKLEARN_KEYS,
        ["scikit-learn", "cloudpickle"],
        {"serialization_format": "cloudpickle"},
    ),
    "xgboost-estimator": Case(
        lambda: xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(FRAME, Y),
        lambda m: m.predict(FRAME),
        "xgboost",
        "model.ubj",
        {"xgb_version", "data", "model_class", "model_format", "code"},
        ["xgboost", "scikit-learn"],
        {},
    ),
    "xgboost-booster": Case(
        lambda: xgb.train({"max_depth": 2}, xgb.DMatrix(FRAME, label=Y), 4),
        lambda m: m.predict(xgb.DMatrix(FRAME)),
        "xgboost",
        "model.ubj",
        {"xgb_version", "data", "model_class", "model_format", "code"},
        ["xgboost"],
        {},
    ),
    "lightgbm-estimator": Case(
        lambda: lgb.LGBMRegressor(n_estimators=4, min_child_samples=2, verbose=-1).fit(
            FRAME, TARGET
        ),
        lambda m: m.predict(FRAME),
        "lightgbm",
        "model.pkl",
        _LGB_KEYS,
        ["lightgbm", "scikit-learn"],
        {},
    ),
    "lightgbm-booster": Case(
        lambda: lgb.train(
            {"verbose": -1, "min_data_in_leaf": 2}, lgb.Dataset(FRAME, label=TARGET), 4
        ),
        lambda m: m.predict(FRAME),
        "lightgbm",
        "model.lgb",
        _LGB_KEYS,
        ["lightgbm"],
        {},
    ),
    "onnx": Case(
        lambda: to_onnx(LinearRegression().fit(X, TARGET), X[:1].astype(np.float32)),
        lambda _: TARGET,  # the linear target, fitted exactly; ONNX computes in float32
        "onnx",
        "model.onnx",
        {"onnx_version", "data", "providers", "onnx_session_options", "code"},
        ["onnx", "onnxruntime"],
        {},
    ),
    "python_function": Case(
        Summer,
        lambda m: m.predict(FRAME),
        "python_function",
        "python_model.pkl",
        {"loader_module", "python_model", "cloudpickle_version", "code", "streamable"},
        ["cloudpickle"],
        {},
    ),
}


def _message(call: Callable[[], object]) -> str:
    try:
        call()
    except InvalidInput as exc:  # ConfigError included
        return f"{type(exc).__name__}: {exc.message}"
    return "accepted"


@pytest.mark.parametrize("case_id", CASES)
def test_each_flavor_round_trips_through_the_registry(
    workspace: Workspace, tmp_path: Path, case_id: str
) -> None:
    """log_model picks the flavor from the class, writes MLflow's files and keys with pinned
    requirements, and the model loaded by alias predicts as the original on a DataFrame and
    on an ndarray."""
    case = CASES[case_id]
    model = case.build()
    with ll.start_run():
        ll.models.log_model(
            model, "model", input_example=FRAME.head(5), registered_model_name="m", **case.options
        )
    ll.models.set_alias("m", "champion", 1)
    loaded = ll.models.load("models:/m@champion")
    expected = case.expected(model)
    assert loaded.flavor == case.flavor
    np.testing.assert_allclose(values(loaded.predict(FRAME)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values(loaded.predict(X)), expected, rtol=1e-5, atol=1e-5)

    files = ll.models.download("models:/m/1", tmp_path / "copy")
    flavors = ll.models.read_mlmodel(files)["flavors"]
    conf = flavors[case.flavor]
    assert set(conf) >= case.conf_keys
    assert (files / case.model_file).is_file()
    assert flavors["python_function"]["loader_module"] in {
        "mlflow.sklearn",
        "mlflow.xgboost",
        "mlflow.lightgbm",
        "mlflow.onnx",
        "mlflow.pyfunc.model",
    }
    lines = (files / "requirements.txt").read_text().splitlines()
    assert [pin(p) for p in case.pins] == [line for line in lines if "==" in line][: len(case.pins)]


class TestSkops:
    def test_a_forest_in_skops_loads_only_when_its_tree_type_is_trusted(
        self, tmp_path: Path
    ) -> None:
        """skops warns a crafted tree can read out of bounds: Loopline refuses it by default,
        naming the type and how to trust it, and loads it when the caller does."""
        forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(FRAME, Y)
        path = save_model(forest, tmp_path / "rf", serialization_format="skops")
        assert _message(lambda: ll.models.load(path)) == (
            "InvalidInput: model.skops holds types Loopline does not trust: "
            "sklearn.tree._tree.Tree; if you trust where the model comes from, load it with "
            "skops_trusted_types=['sklearn.tree._tree.Tree']"
        )
        loaded = ll.models.load(path, skops_trusted_types=["sklearn.tree._tree.Tree"])
        assert loaded.predict(FRAME).tolist() == forest.predict(FRAME).tolist()

    def test_an_unknown_format_is_refused_naming_the_choices(self, tmp_path: Path) -> None:
        assert _message(
            lambda: save_model(_logistic(), tmp_path / "m", serialization_format="joblib")
        ) == (
            "InvalidInput: unknown serialization_format 'joblib'; use one of: pickle, "
            "cloudpickle, skops"
        )


class TestPythonFunction:
    def test_a_context_taking_predict_gets_the_context_load_context_saw(
        self, tmp_path: Path
    ) -> None:
        path = save_model(ContextSummer(), tmp_path / "m", input_example=X[:2])
        loaded = ll.models.load(path)
        assert loaded.flavor == "python_function"
        assert isinstance(loaded.unwrap(), ContextSummer)
        np.testing.assert_allclose(loaded.predict(X), X.sum(axis=1) * 2)

    def test_unwrap_returns_the_plain_object_and_the_file_unpickles_without_loopline(
        self, tmp_path: Path
    ) -> None:
        """The wrapper class is pickled by value, so MLflow loads the file where Loopline is
        not installed (simulated: every loopline module made unimportable while unpickling)."""
        path = save_model(Summer(), tmp_path / "m")
        assert isinstance(ll.models.load(path).unwrap(), Summer)
        blocked = ["loopline", "loopline.models", "loopline.models.flavors"]
        with pytest.MonkeyPatch.context() as patch:
            for module in [*blocked, "loopline.models.flavors.predict_wrapper"]:
                patch.setitem(sys.modules, module, None)
            with (path / "python_model.pkl").open("rb") as handle:
                wrapper = pickle.load(handle)
        assert isinstance(wrapper.model, Summer)
        np.testing.assert_allclose(wrapper.predict(None, X), X.sum(axis=1))

    def test_an_object_without_predict_is_refused(self, tmp_path: Path) -> None:
        assert _message(lambda: save_model(object(), tmp_path / "m")) == (
            "InvalidInput: cannot save a model of type object: it is not a scikit-learn, "
            "XGBoost, LightGBM or ONNX model and has no predict method"
        )


class TestChoosingAndDescribing:
    def test_a_named_flavor_that_does_not_fit_the_model_is_refused(self, tmp_path: Path) -> None:
        got = {
            "mismatch": _message(lambda: save_model(_logistic(), tmp_path / "a", flavor="xgboost")),
            "unknown": _message(lambda: save_model(_logistic(), tmp_path / "b", flavor="torch")),
            "booster format": _message(
                lambda: save_model(
                    CASES["lightgbm-booster"].build(), tmp_path / "c", serialization_format="skops"
                )
            ),
        }
        assert got == {
            "mismatch": "InvalidInput: the xgboost flavor saves xgboost.Booster and XGBoost "
            "estimators, not LogisticRegression",
            "unknown": "InvalidInput: unknown model flavor 'torch'; use one of: onnx, xgboost, "
            "lightgbm, sklearn, python_function",
            "booster format": "InvalidInput: a LightGBM Booster is saved in its own text "
            "format; serialization_format applies to scikit-learn-API models only",
        }

    def test_a_plain_class_can_be_forced_into_the_sklearn_flavor(self, tmp_path: Path) -> None:
        path = save_model(Summer(), tmp_path / "m", flavor="sklearn")
        assert ll.models.read_mlmodel(path)["flavors"]["sklearn"]["pickled_model"] == "model.pkl"
        np.testing.assert_allclose(ll.models.load(path).predict(X), X.sum(axis=1))

    def test_an_explicit_signature_wins_over_the_inferred_one(self, workspace: Workspace) -> None:
        """A dict in MLflow's shape (lists or JSON strings) or a ModelSignature-like object."""
        columns = [{"type": "double", "name": n, "required": True} for n in ("a", "b", "c")]

        class Signature:
            def to_dict(self) -> dict[str, Any]:
                return {"inputs": json.dumps(columns), "outputs": None, "params": None}

        got = []
        for signature in ({"inputs": columns}, Signature()):
            with ll.start_run():
                info = ll.models.log_model(
                    _logistic(), "model", input_example=X[:2], signature=signature
                )
            got.append(ll.models.load(info.model_uri).signature)
        assert got == [{"inputs": json.dumps(columns), "outputs": None, "params": None}] * 2
        assert _message(lambda: save_model(_logistic(), "x", signature={"input": []})) == (
            "InvalidInput: signature must be a dict with 'inputs' (and optionally 'outputs' "
            "and 'params') or an mlflow ModelSignature, got dict"
        )

    def test_pip_requirements_replace_the_pins(self, tmp_path: Path) -> None:
        path = save_model(_logistic(), tmp_path / "m", pip_requirements=["scikit-learn>=1.4"])
        assert (path / "requirements.txt").read_text() == "scikit-learn>=1.4\n"


class TestLoading:
    def test_a_local_directory_loads_by_path_str_and_file_uri(self, tmp_path: Path) -> None:
        model = _logistic()
        path = save_model(model, tmp_path / "m")
        expected = model.predict(FRAME).tolist()
        for where in (path, str(path), path.as_uri()):
            assert ll.models.load(where).predict(FRAME).tolist() == expected
        with pytest.raises(NotFound, match="no model directory at"):
            ll.models.load((tmp_path / "nothing").as_uri())

    def test_an_unknown_loader_is_refused_naming_the_supported_ones(self, tmp_path: Path) -> None:
        (tmp_path / "MLmodel").write_text(
            "flavors:\n  python_function:\n    loader_module: mlflow.pytorch\n"
        )
        assert _message(lambda: ll.models.load(tmp_path)) == (
            f"InvalidInput: model at {tmp_path} needs the python_function loader "
            "'mlflow.pytorch', which Loopline does not support; supported loaders: "
            "loopline.models, mlflow.lightgbm, mlflow.onnx, mlflow.pyfunc.model, "
            "mlflow.sklearn, mlflow.xgboost"
        )

    def test_a_model_file_outside_the_directory_is_refused(self, tmp_path: Path) -> None:
        path = save_model(CASES["xgboost-booster"].build(), tmp_path / "m")
        doc = ll.models.read_mlmodel(path)
        doc["flavors"]["xgboost"]["data"] = "../../etc/passwd"
        (path / "MLmodel").write_text(json.dumps(doc))
        assert _message(lambda: ll.models.load(path)) == (
            f"InvalidInput: model file '../../etc/passwd' is missing or outside {path}"
        )


class TestMissingPackages:
    """An optional library that is absent is a ConfigError naming the package to install."""

    def test_each_missing_library_is_named_with_its_pip_command(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        saved = {
            "xgboost": save_model(CASES["xgboost-booster"].build(), tmp_path / "x"),
            "onnxruntime": save_model(CASES["onnx"].build(), tmp_path / "o"),
            "lightgbm": save_model(CASES["lightgbm-booster"].build(), tmp_path / "l"),
        }
        for module in ("xgboost", "onnxruntime", "lightgbm", "skops", "skops.io"):
            monkeypatch.setitem(sys.modules, module, None)
        got = {name: _message(lambda p=path: ll.models.load(p)) for name, path in saved.items()}
        got["skops"] = _message(
            lambda: save_model(_logistic(), tmp_path / "s", serialization_format="skops")
        )
        assert got == {
            "xgboost": "ConfigError: loading an XGBoost model needs the 'xgboost' package, "
            "which cannot be imported; install it with: pip install xgboost",
            "onnxruntime": "ConfigError: running an ONNX model needs the 'onnxruntime' "
            "package, which cannot be imported; install it with: pip install onnxruntime",
            "lightgbm": "ConfigError: loading a LightGBM model needs the 'lightgbm' package, "
            "which cannot be imported; install it with: pip install lightgbm",
            "skops": "ConfigError: saving in the skops format needs the 'skops' package, "
            "which cannot be imported; install it with: pip install skops",
        }
        assert issubclass(ConfigError, InvalidInput)

    def test_without_cloudpickle_a_python_function_model_is_pickled_and_pins_loopline(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The wrapper is then pickled by reference, so loading it needs Loopline: pinned."""
        monkeypatch.setitem(sys.modules, "cloudpickle", None)
        path = save_model(Summer(), tmp_path / "m")
        conf = ll.models.read_mlmodel(path)["flavors"]["python_function"]
        assert "cloudpickle_version" not in conf
        assert (path / "requirements.txt").read_text() == f"{pin('loopline')}\n"
        np.testing.assert_allclose(ll.models.load(path).predict(X), X.sum(axis=1))
        assert _message(
            lambda: save_model(_logistic(), tmp_path / "c", serialization_format="cloudpickle")
        ) == (
            "ConfigError: saving in the cloudpickle format needs the 'cloudpickle' package, "
            "which cannot be imported; install it with: pip install cloudpickle"
        )
