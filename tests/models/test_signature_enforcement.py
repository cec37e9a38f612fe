"""Predictions check their input against the model's signature and name what is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import loopline as ll
from loopline.errors import InvalidInput
from loopline.workspace import Workspace

FRAME = pd.DataFrame(
    {
        "amount": [10.0, 250.0, 30.0, 900.0],
        "count": np.array([1, 7, 2, 9], dtype="int64"),
        "country": ["de", "fr", "de", "us"],
    }
)
Y = np.array([0, 1, 0, 1])
TEXT = pd.Series(["x"]).dtype  # pandas' text dtype: 'object', or 'str' from pandas 3


class ByColumns:
    """A model trained on named columns: predicts from the numeric ones."""

    def __init__(self) -> None:
        self.inner = LogisticRegression()

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> ByColumns:
        self.inner.fit(frame[["amount", "count"]].to_numpy(float), y)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        assert list(frame.columns) == ["amount", "count", "country"], list(frame.columns)
        return self.inner.predict(frame[["amount", "count"]].to_numpy(float))


def _load(model: object, example: object) -> ll.models.LoadedModel:
    with ll.start_run():
        info = ll.models.log_model(model, "model", input_example=example)
    return ll.models.load(info.model_uri)


def _error(call: object) -> str:
    try:
        call()  # type: ignore[operator]
    except InvalidInput as exc:
        return exc.message
    return "accepted"


def test_column_signatures_check_reorder_widen_and_name_the_column(workspace: Workspace) -> None:
    model = _load(ByColumns().fit(FRAME, Y), FRAME.head(2))
    expected = model.unwrap().predict(FRAME).tolist()
    shuffled = FRAME[["country", "count", "amount"]]
    as_ints = FRAME.assign(amount=FRAME["amount"].astype("int64"))  # int -> double: widened
    with_extra = FRAME.assign(note="x")
    assert model.predict(shuffled).tolist() == expected
    assert model.predict(as_ints).tolist() == expected
    assert model.predict(with_extra).tolist() == expected  # extra columns dropped by default
    assert model.predict(FRAME.to_dict("list")).tolist() == expected
    errors = {
        "missing": _error(lambda: model.predict(FRAME.drop(columns=["count"]))),
        "wrong type": _error(lambda: model.predict(FRAME.assign(count=FRAME["amount"] / 3))),
        "text for number": _error(lambda: model.predict(FRAME.assign(amount="lots"))),
        "extra, rejected": _error(lambda: model.predict(with_extra, extra_columns="reject")),
    }
    assert errors == {
        "missing": "input is missing required column(s): count",
        "wrong type": "input column 'count': the model takes long, got float64 (not safely "
        "convertible)",
        "text for number": f"input column 'amount': the model takes double, got {TEXT} (not "
        "safely convertible)",
        "extra, rejected": "input has column(s) the model does not take: note",
    }


def test_tensor_signatures_check_shape_and_kind(workspace: Workspace) -> None:
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
    model = _load(LogisticRegression().fit(X, Y), X[:2])
    assert model.predict(X).tolist() == [0, 1, 0, 1]
    assert model.predict(np.array([[0, 1], [1, 0]])).tolist() == [0, 1]  # ints widen to float
    errors = {
        "width": _error(lambda: model.predict(np.ones((2, 3)))),
        "rank": _error(lambda: model.predict(np.ones(2))),
        "text": _error(lambda: model.predict(np.array([["a", "b"]]))),
    }
    assert errors == {
        "width": "input: dimension 1 must be 2 (shape [-1, 2]), got 3",
        "rank": "input: the model takes arrays of shape [-1, 2], got [2]",
        "text": "input: the model takes float64 numbers, got <U1",
    }
