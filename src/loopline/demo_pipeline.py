"""The demo's training pipeline: load -> validate -> split -> tune -> train -> evaluate.

It lives in the installed package (not in ``demo.py``'s caller) because pipeline steps run in
worker processes, which import the step's module by name. The model the ``train`` step returns
is stored in the MLflow model format among that step's outputs; the demo registers it from
there, so the registered version's lineage reaches the step run and the dataset version.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from loopline.data.entities import DatasetVersion
from loopline.pipelines import pipeline, step

__all__ = ["wine_training"]

SEARCH_SPACE = {"n_estimators": ("int", 10, 60), "max_depth": ("int", 2, 8)}


@step
def load(data: DatasetVersion) -> pd.DataFrame:
    from loopline.api import current_workspace

    frame: pd.DataFrame = current_workspace().data.load(data)
    return frame


@step
def validate(data: DatasetVersion, suite: str) -> dict[str, int]:
    """Stop the pipeline (this step fails) when the data breaks its expectations."""
    from loopline.api import current_workspace
    from loopline.errors import InvalidInput

    report = current_workspace().data.validate(data, suite)
    if not report.success:
        failed = ", ".join(r.name for r in report.failures)
        raise InvalidInput(f"{data.ref} fails its expectations: {failed}")
    return {"passed": report.statistics["passed"], "evaluated": report.statistics["evaluated"]}


@step
def split(frame: pd.DataFrame, checked: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=0.3, random_state=7, stratify=frame["target"])
    return train.reset_index(drop=True), test.reset_index(drop=True)


@step
def tune(train: pd.DataFrame, trials: int) -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_score

    from loopline.pipelines.tuning import tune as run_study

    X, y = train.drop(columns="target"), train["target"]

    def objective(params: dict[str, Any]) -> float:
        model = RandomForestClassifier(random_state=7, **params)
        return float(cross_val_score(model, X, y, cv=3).mean())

    result = run_study(objective, SEARCH_SPACE, n_trials=trials, direction="maximize", seed=7)
    return dict(result.best_params)


@step
def train(train: pd.DataFrame, params: dict[str, Any]) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(random_state=7, **params)
    return model.fit(train.drop(columns="target"), train["target"])


@step
def evaluate(model: Any, test: pd.DataFrame) -> dict[str, float]:
    accuracy = model.score(test.drop(columns="target"), test["target"])
    return {"test_accuracy": float(accuracy)}


@pipeline
def wine_training(data: str = "wine@1", suite: str = "expectations.yaml", trials: int = 6) -> None:
    frame = load(data)
    checked = validate(data, suite)
    train_set, test_set = split(frame, checked)
    params = tune(train_set, trials)
    model = train(train_set, params)
    evaluate(model, test_set)
