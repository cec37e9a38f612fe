"""``ll.autolog()`` on real scikit-learn and LightGBM estimators."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import loopline as ll


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[ll.Workspace]:
    workspace = ll.use_workspace(tmp_path / "ws")
    ll.autolog()
    warnings.simplefilter("ignore")
    yield workspace  # type: ignore[misc]
    ll.autolog(disable=True)


@pytest.fixture
def iris():
    return load_iris(return_X_y=True, as_frame=True)


def _runs() -> list[ll.Run]:
    return ll.search_runs(order_by=["attributes.start_time ASC"], output_format="list")


class TestClassifiersAndPipelines:
    def test_a_pipeline_fit_logs_one_run_with_params_metrics_and_model(self, ws, iris):
        X, y = iris
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
        (run,) = _runs()
        assert run.info.status == "FINISHED"
        assert run.params["logisticregression__max_iter"] == "500"
        for key in (
            "training_accuracy_score",
            "training_f1_score",
            "training_log_loss",
            "training_roc_auc",
            "training_score",
        ):
            assert 0 <= run.metrics[key] <= 2, key
        assert run.metrics["training_accuracy_score"] > 0.9
        assert run.tags["estimator_name"] == "Pipeline"
        files = {r.path for r in ws.tracking.artifact_files(run.run_id, "model")}
        assert {"model/MLmodel", "model/model.pkl", "model/input_example.json"} <= files

    def test_the_logged_model_loads_in_mlflow_with_its_signature(self, ws, iris, tmp_path):
        import mlflow.pyfunc
        from mlflow.models import Model

        X, y = iris
        LogisticRegression(max_iter=500).fit(X, y)
        (run,) = _runs()
        local = ws.tracking.download_artifacts(run.run_id, "model", tmp_path / "dl")
        model = mlflow.pyfunc.load_model(str(local))
        assert list(model.predict(X.head(3))) == [0, 0, 0]
        signature = Model.load(str(local)).signature
        assert signature.inputs.input_names() == list(X.columns)

    def test_grid_search_logs_a_child_run_per_candidate_and_the_best(self, ws, iris):
        X, y = iris
        GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0, 10.0]}, cv=3).fit(X, y)
        runs = _runs()
        parents = [r for r in runs if r.info.parent_run_id is None]
        children = [r for r in runs if r.info.parent_run_id is not None]
        assert len(parents) == 1 and len(children) == 3
        parent = parents[0]
        assert {c.info.parent_run_id for c in children} == {parent.run_id}
        assert {c.params["C"] for c in children} == {"0.1", "1.0", "10.0"}
        assert all("mean_test_score" in c.metrics for c in children)
        assert "best_C" in parent.params and "best_cv_score" in parent.metrics

    def test_inside_an_active_run_autolog_logs_into_it(self, ws, iris):
        X, y = iris
        with ll.start_run(capture=False) as run:
            LogisticRegression(max_iter=500).fit(X, y)
            ll.log_metric("extra", 1.0)
        (only,) = _runs()
        assert only.run_id == run.run_id
        assert "training_accuracy_score" in only.metrics and "extra" in only.metrics

    def test_a_failing_fit_marks_its_run_failed_and_reraises(self, ws, iris):
        X, _ = iris
        with pytest.raises(ValueError):
            LogisticRegression().fit(X, ["a"] * len(X))  # one class only
        (run,) = _runs()
        assert run.info.status == "FAILED"

    def test_a_lone_transformer_fit_logs_nothing(self, ws, iris):
        X, _ = iris
        StandardScaler().fit(X)
        assert _runs() == []

    def test_disable_stops_logging(self, ws, iris):
        X, y = iris
        ll.autolog(disable=True)
        LogisticRegression(max_iter=500).fit(X, y)
        assert _runs() == []


class TestRegressorsAndBoosters:
    def test_a_regressor_logs_error_metrics(self, ws):
        X, y = load_diabetes(return_X_y=True)
        Ridge().fit(X, y)
        (run,) = _runs()
        mse = run.metrics["training_mean_squared_error"]
        assert run.metrics["training_root_mean_squared_error"] == pytest.approx(mse**0.5)
        assert 0 < run.metrics["training_r2_score"] < 1
        assert "training_mean_absolute_error" in run.metrics

    def test_lightgbm_sklearn_api_is_logged(self, ws, iris):
        lightgbm = pytest.importorskip("lightgbm")
        X, y = iris
        lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
        (run,) = _runs()
        assert run.tags["estimator_name"] == "LGBMClassifier"
        assert run.params["n_estimators"] == "5"
        assert run.metrics["training_accuracy_score"] > 0.8
