"""Pipelines the tests run. They live in an importable module so worker processes import them
by name, as they would a user's project module."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import loopline as ll
from loopline.data.entities import DatasetVersion
from loopline.pipelines import pipeline, step


@step
def load(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(n)), "y": [2 * i + 1 for i in range(n)]})


@step
def split(frame: pd.DataFrame, fraction: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = int(len(frame) * fraction)
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


@step
def fit(train: pd.DataFrame):
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(train[["x"]], train["y"])


@step
def evaluate(model, test: pd.DataFrame) -> dict:
    predictions = model.predict(test[["x"]])
    return {"mae": float(np.abs(predictions - test["y"]).mean()), "rows": len(test)}


@step
def as_array(frame: pd.DataFrame) -> np.ndarray:
    return frame.to_numpy()


@pipeline
def train_pipeline(n: int = 20, fraction: float = 0.5):
    frame = load(n)
    train, test = split(frame, fraction)
    model = fit(train)
    evaluate(model, test)
    as_array(frame)


# -- fan-out / fan-in --------------------------------------------------------------------------
@step
def number(value: int) -> int:
    return value


@step
def square(value: int) -> int:
    return value * value


@step
def total(values: list) -> int:
    return sum(values)


@pipeline
def fan(width: int = 3):
    base = number(width)
    squares = [square(base) for _ in range(width)]
    total(squares)


# -- retries, timeouts, failures ---------------------------------------------------------------
def _bump(counter: str) -> int:
    path = Path(counter)
    attempts = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempts))
    return attempts


@step(retries=2, backoff=0.01)
def flaky(counter: str) -> str:
    attempts = _bump(counter)
    if attempts < 3:
        raise RuntimeError(f"flaky failure {attempts}")
    return f"ok after {attempts}"


@pipeline
def flaky_pipeline(counter: str = "attempts.txt"):
    flaky(counter)


@step(timeout=0.5)
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@step
def after(value: float) -> float:
    return value + 1


@pipeline
def timeout_pipeline(seconds: float = 30.0):
    after(sleepy(seconds))


@step
def maybe_fail(flag_file: str, value: int) -> int:
    if Path(flag_file).exists():
        raise ValueError(f"asked to fail by {flag_file}")
    return value + 1


@step
def independent(value: int) -> int:
    return value * 10


@pipeline
def failing_pipeline(flag_file: str = "fail.flag"):
    first = number(1)
    second = maybe_fail(flag_file, first)
    after(second)
    independent(first)


@step(cache=False)
def stamp(counter: str) -> int:
    return _bump(counter)


@pipeline
def uncached_pipeline(counter: str = "stamps.txt"):
    square(stamp(counter))


@step
def count_rows(data: DatasetVersion) -> int:
    return int(ll.current_workspace().data.resolve(data).row_count or 0)


@pipeline
def dataset_pipeline(data: str = "points@1"):
    count_rows(data)


@step
def pid() -> int:
    return os.getpid()


@step
def crash(code: int) -> int:
    os._exit(code)


@pipeline
def crash_pipeline(code: int = 3):
    crash(code)


@step(cache=False)
def workspace_home() -> str:
    return str(ll.current_workspace().settings.home)


@pipeline
def home_pipeline():
    workspace_home()
