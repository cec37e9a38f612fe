"""The minimal serving app: Open Inference Protocol v2 and MLflow's scoring routes answer with
the model's own predictions, and refuse bad input naming the field or column.

The app runs under uvicorn in a thread of the test process (real HTTP, started once per
module); ``loopline serve`` runs as a child process once, at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from fastapi import FastAPI
from sklearn.linear_model import LinearRegression, LogisticRegression

import loopline as ll
from loopline.config import Settings
from loopline.models.mlmodel import save_sklearn_model
from loopline.serving import create_serving_app
from loopline.workspace import Workspace
from tests.live_server import free_port
from tests.test_cli import run

RNG = np.random.default_rng(7)
FRAME = pd.DataFrame({"amount": RNG.normal(100, 30, 60).round(2), "age": RNG.integers(18, 80, 60)})
LABELS = (FRAME["amount"] / 10 + FRAME["age"] > 40).astype(int).to_numpy()
ARRAY = RNG.normal(size=(40, 3))
TARGET = ARRAY @ np.array([1.5, -2.0, 0.5]) + 0.25


@pytest.fixture(scope="module")
def frame_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LogisticRegression]:
    """A classifier trained on a DataFrame: its signature has named columns."""
    model = LogisticRegression(max_iter=500).fit(FRAME, LABELS)
    path = tmp_path_factory.mktemp("models") / "fraud"
    save_sklearn_model(
        model, path, input_example=FRAME.head(5), output_example=model.predict(FRAME.head(5))
    )
    return path, model


@pytest.fixture(scope="module")
def array_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LinearRegression]:
    """A regressor trained on a 2-D array: its signature is one float64 tensor."""
    model = LinearRegression().fit(ARRAY, TARGET)
    path = tmp_path_factory.mktemp("models") / "price"
    save_sklearn_model(
        model, path, input_example=ARRAY[:5], output_example=model.predict(ARRAY[:5])
    )
    return path, model


@contextmanager
def _running(app: FastAPI) -> Iterator[httpx.Client]:
    """``app`` under uvicorn in a thread on a free loopback port, and a client for it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.005)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture(scope="module")
def fraud(frame_model: tuple[Path, LogisticRegression]) -> Iterator[httpx.Client]:
    with _running(create_serving_app(frame_model[0], "fraud", version=3)) as client:
        yield client


@pytest.fixture(scope="module")
def price(array_model: tuple[Path, LinearRegression]) -> Iterator[httpx.Client]:
    with _running(create_serving_app(array_model[0])) as client:
        yield client


def _column(name: str, values: list, datatype: str) -> dict:
    return {"name": name, "shape": [len(values)], "datatype": datatype, "data": values}


ROWS = FRAME.head(4)


class TestHealthAndMetadata:
    def test_health_routes_answer_200(self, fraud: httpx.Client) -> None:
        """Liveness, readiness, model readiness and MLflow's ping all answer while serving."""
        got = {
            path: (r.status_code, r.json())
            for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/fraud/ready", "/ping")
            for r in [fraud.get(path)]
        }
        assert got == {
            "/v2/health/live": (200, {"live": True}),
            "/v2/health/ready": (200, {"ready": True}),
            "/v2/models/fraud/ready": (200, {"name": "fraud", "ready": True}),
            "/ping": (200, {"status": "ok"}),
        }

    def test_server_metadata_names_loopline_and_its_version(self, fraud: httpx.Client) -> None:
        assert fraud.get("/v2").json() == {
            "name": "loopline",
            "version": ll.__version__,
            "extensions": [],
        }

    def test_model_metadata_lists_the_signature_columns_as_tensors(self, fraud: httpx.Client):
        """A DataFrame signature becomes one 1-D tensor per column, typed from the column."""
        assert fraud.get("/v2/models/fraud").json() == {
            "name": "fraud",
            "platform": "sklearn",
            "versions": ["3"],
            "inputs": [
                {"name": "amount", "datatype": "FP64", "shape": [-1]},
                {"name": "age", "datatype": "INT64", "shape": [-1]},
            ],
            "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
        }

    def test_a_tensor_model_is_named_after_its_directory_and_has_one_input(
        self, price: httpx.Client
    ) -> None:
        meta = price.get("/v2/models/price").json()
        assert meta == {
            "name": "price",
            "platform": "sklearn",
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 3]}],
            "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
        }

    def test_the_versioned_routes_serve_only_the_served_version(self, fraud: httpx.Client):
        assert fraud.get("/v2/models/fraud/versions/3").status_code == 200
        assert fraud.get("/v2/models/fraud/versions/3/ready").status_code == 200
        wrong = fraud.get("/v2/models/fraud/versions/2")
        assert (wrong.status_code, wrong.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


class TestOpenInferenceProtocol:
    def test_named_column_tensors_predict_what_the_model_predicts(
        self, fraud: httpx.Client, frame_model: tuple[Path, LogisticRegression]
    ) -> None:
        """One tensor per column, in any order; the id comes back; outputs are INT64."""
        body = {
            "id": "req-1",
            "inputs": [
                _column("age", ROWS["age"].tolist(), "INT64"),
                _column("amount", ROWS["amount"].tolist(), "FP64"),
            ],
        }
        answer = fraud.post("/v2/models/fraud/infer", json=body)
        expected = frame_model[1].predict(ROWS).tolist()
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "model_name": "fraud",
            "model_version": "3",
            "id": "req-1",
            "outputs": [{"name": "predict", "shape": [4], "datatype": "INT64", "data": expected}],
        }

    def test_a_single_2d_tensor_is_rows_in_signature_column_order(
        self, fraud: httpx.Client, frame_model: tuple[Path, LogisticRegression]
    ) -> None:
        """A [rows, columns] tensor with a flat data list, as Triton clients send it."""
        values = ROWS[["amount", "age"]].to_numpy(dtype=float)
        body = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(values.shape),
                    "datatype": "FP64",
                    "data": values.reshape(-1).tolist(),
                }
            ]
        }
        answer = fraud.post("/v2/models/fraud/infer", json=body).json()
        assert answer["outputs"][0]["data"] == frame_model[1].predict(ROWS).tolist()
        assert "id" not in answer

    def test_a_tensor_model_takes_one_nested_tensor_and_returns_fp64(
        self, price: httpx.Client, array_model: tuple[Path, LinearRegression]
    ) -> None:
        rows = ARRAY[:3].astype(np.float32)
        body = {
            "inputs": [{"name": "x", "shape": [3, 3], "datatype": "FP32", "data": rows.tolist()}]
        }
        out = price.post("/v2/models/price/infer", json=body).json()["outputs"][0]
        assert (out["name"], out["shape"], out["datatype"]) == ("predict", [3], "FP64")
        assert np.allclose(out["data"], array_model[1].predict(rows.astype(np.float64)))

    @pytest.mark.parametrize(
        ("inputs", "names"),
        [
            ([_column("amount", [1.0, 2.0], "FP64")], "missing required column(s): age"),
            (
                [_column("amount", [1.0], "FP64"), _column("age", ["old"], "BYTES")],
                "input column 'age': the model takes long",
            ),
            (
                [_column("amount", [1.0], "FP64"), _column("agee", [30], "INT64")],
                "'agee' are not columns of model 'fraud'",
            ),
            (
                [_column("amount", [1.0], "FP64"), _column("age", [30.5], "INT64")],
                "input tensor 'age': data holds float64 values, not INT64",
            ),
            (
                [{"name": "amount", "shape": [3], "datatype": "FP64", "data": [1.0, 2.0]}],
                "input tensor 'amount': shape [3] needs 3 elements, data has 2",
            ),
            ([{"name": "amount", "shape": [1], "data": [1.0]}], "'amount': missing 'datatype'"),
            (
                [{"name": "amount", "shape": [1], "datatype": "FLOAT", "data": [1.0]}],
                "'amount': unknown datatype 'FLOAT'",
            ),
            (
                [_column("amount", [1.0, 2.0], "FP64"), _column("age", [30], "INT64")],
                "amount has 2, age has 1",
            ),
        ],
        ids=[
            "missing-column",
            "wrong-column-type",
            "unknown-tensor",
            "float-for-int",
            "shape-mismatch",
            "no-datatype",
            "bad-datatype",
            "ragged-columns",
        ],
    )
    def test_bad_input_is_a_400_naming_the_tensor_or_column(
        self, fraud: httpx.Client, inputs: list, names: str
    ) -> None:
        answer = fraud.post("/v2/models/fraud/infer", json={"inputs": inputs})
        body = answer.json()
        assert answer.status_code == 400
        assert body["error_code"] == "INVALID_PARAMETER_VALUE"
        assert names in body["message"]
        assert body["error"] == body["message"]  # where OIP clients look for it

    def test_a_fraction_in_an_integer_column_of_a_2d_tensor_is_refused_naming_it(
        self, fraud: httpx.Client
    ) -> None:
        """Whole numbers in an FP64 tensor may fill an integer column; 30.5 may not."""
        body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 30.5]}]}
        answer = fraud.post("/v2/models/fraud/infer", json=body)
        assert answer.status_code == 400
        assert "input column 'age': the model takes long, got float64" in answer.json()["message"]

    def test_a_2d_tensor_of_the_wrong_width_names_the_columns_the_model_takes(
        self, fraud: httpx.Client
    ) -> None:
        body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
        answer = fraud.post("/v2/models/fraud/infer", json=body)
        assert answer.status_code == 400
        assert "takes 2 named columns (amount, age)" in answer.json()["message"]

    def test_an_unknown_model_name_is_404(self, fraud: httpx.Client) -> None:
        body = {"inputs": [_column("amount", [1.0], "FP64"), _column("age", [30], "INT64")]}
        got = [
            fraud.post("/v2/models/other/infer", json=body),
            fraud.get("/v2/models/other"),
            fraud.get("/v2/models/other/ready"),
        ]
        assert [r.status_code for r in got] == [404, 404, 404]
        assert "model 'other' is not served here; this server serves 'fraud'" in got[0].text

    def test_invalid_json_and_a_missing_inputs_list_are_400(self, fraud: httpx.Client) -> None:
        broken = fraud.post(
            "/v2/models/fraud/infer", content=b"{", headers={"content-type": "application/json"}
        )
        empty = fraud.post("/v2/models/fraud/infer", json={"inputs": []})
        assert (broken.status_code, empty.status_code) == (400, 400)
        assert "not valid JSON" in broken.json()["message"]
        assert "'inputs' must be a non-empty list" in empty.json()["message"]

    def test_triton_binary_tensor_data_is_refused_with_a_way_out(self, fraud: httpx.Client):
        """tritonclient sends binary tensors unless told binary_data=False: say so."""
        tensor = {"name": "amount", "shape": [1], "datatype": "FP64"}
        header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": 8}}]})
        answer = fraud.post(
            "/v2/models/fraud/infer",
            content=header.encode() + np.float64(1.0).tobytes(),
            headers={"inference-header-content-length": str(len(header))},
        )
        assert answer.status_code == 400
        assert "binary_data=False" in answer.json()["error"]

    def test_requested_outputs_must_exist(self, fraud: httpx.Client) -> None:
        body = {
            "inputs": [_column("amount", [1.0], "FP64"), _column("age", [30], "INT64")],
            "outputs": [{"name": "proba"}],
        }
        answer = fraud.post("/v2/models/fraud/infer", json=body)
        assert answer.status_code == 400
        assert "requested output(s) 'proba' unknown; the model has predict" in answer.text


class TestMlflowInvocations:
    def test_all_four_payload_formats_predict_the_same(
        self, fraud: httpx.Client, frame_model: tuple[Path, LogisticRegression]
    ) -> None:
        expected = frame_model[1].predict(ROWS).tolist()
        records = ROWS.to_dict(orient="records")
        payloads = {
            "dataframe_split": {
                "columns": ["amount", "age"],
                "data": ROWS[["amount", "age"]].values.tolist(),
            },
            "dataframe_records": records,
            "instances": records,
            "inputs": {"amount": ROWS["amount"].tolist(), "age": ROWS["age"].tolist()},
        }
        got = {
            key: fraud.post("/invocations", json={key: value}).json()
            for key, value in payloads.items()
        }
        assert got == {key: {"predictions": expected} for key in payloads}

    def test_row_lists_score_a_tensor_model(
        self, price: httpx.Client, array_model: tuple[Path, LinearRegression]
    ) -> None:
        expected = array_model[1].predict(ARRAY[:2])
        for key in ("inputs", "instances"):
            answer = price.post("/invocations", json={key: ARRAY[:2].tolist()})
            assert np.allclose(answer.json()["predictions"], expected), key

    def test_a_wrongly_typed_column_is_a_400_naming_it(self, fraud: httpx.Client) -> None:
        answer = fraud.post(
            "/invocations", json={"dataframe_records": [{"amount": 10.0, "age": "young"}]}
        )
        assert answer.status_code == 400
        assert "input column 'age'" in answer.json()["message"]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({}, "needs exactly one of dataframe_split, dataframe_records, instances, inputs"),
            ({"inputs": [[1, 2]], "instances": [[1, 2]]}, "got instances, inputs"),
            ({"dataframe_records": [], "extra": 1}, "unknown key(s): extra"),
            ({"dataframe_split": {"columns": ["amount"]}}, 'dataframe_split must be {"columns"'),
            ({"dataframe_records": {"amount": 1}}, "dataframe_records must be a list"),
            ({"inputs": [[1, 2]], "params": {"k": 1}}, "params: this model takes no"),
            ([1, 2], "must be a JSON object"),
        ],
        ids=["none", "two", "unknown-key", "split-no-data", "records-not-list", "params", "list"],
    )
    def test_malformed_payloads_are_400(self, fraud: httpx.Client, body: object, message: str):
        answer = fraud.post("/invocations", json=body)
        assert answer.status_code == 400
        assert message in answer.json()["message"]

    def test_a_non_json_content_type_is_refused(self, fraud: httpx.Client) -> None:
        answer = fraud.post(
            "/invocations", content=b"amount,age\n1,2\n", headers={"content-type": "text/csv"}
        )
        assert answer.status_code == 400
        assert "send application/json" in answer.json()["message"]


class TestServingFromTheRegistry:
    def test_a_models_uri_serves_the_aliased_version_under_its_registered_name(
        self, tmp_path: Path
    ) -> None:
        """models:/NAME@ALIAS resolves to the version number once; name and version default
        to the registry's."""
        ws = Workspace(Settings.for_home(tmp_path / "ws", actor="tester"))
        with ll.use_workspace(ws):
            model = LogisticRegression(max_iter=500).fit(FRAME, LABELS)
            with ll.start_run(capture=False):
                info = ll.models.log_model(model, "model", input_example=FRAME.head(3))
            ll.models.register(info.model_uri, "fraud")
            ll.models.register(info.model_uri, "fraud")
            ll.models.set_alias("fraud", "champion", 2)
            app = create_serving_app("models:/fraud@champion", workspace=ws)
        with _running(app) as client:
            meta = client.get("/v2/models/fraud").json()
            answer = client.post("/invocations", json={"dataframe_split": ROWS.to_dict("split")})
        ws.close()
        assert meta["versions"] == ["2"]
        assert answer.json() == {"predictions": model.predict(ROWS).tolist()}


class TestServeCommand:
    def test_loopline_serve_runs_as_a_process_and_stops_on_sigterm(
        self, frame_model: tuple[Path, LogisticRegression], tmp_path: Path
    ) -> None:
        """``loopline serve DIR`` needs no workspace; SIGTERM ends it cleanly."""
        port = free_port()
        log = tmp_path / "serve.log"
        command = [sys.executable, "-m", "loopline", "serve", str(frame_model[0])]
        command += ["--name", "fraud", "--port", str(port), "--workers", "2"]
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            answer = httpx.post(
                f"{url}/invocations",
                json={"dataframe_records": ROWS.to_dict(orient="records")},
                timeout=10,
            )
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            code = proc.wait(timeout=30)
        assert answer.json() == {"predictions": frame_model[1].predict(ROWS).tolist()}
        assert code in (0, -signal.SIGTERM), log.read_text()  # uvicorn re-raises SIGTERM
        assert "Application shutdown complete" in log.read_text()
        assert not (tmp_path / ".loopline").exists()  # a directory is served without a workspace
        assert "Serving model 'fraud' on http://127.0.0.1:" in log.read_text()

    def test_a_path_that_is_neither_a_directory_nor_a_uri_is_one_error_line(
        self, tmp_path: Path
    ) -> None:
        result = run("serve", "no/such/model", cwd=tmp_path)
        assert result.returncode == 3
        assert result.stderr.startswith("Error: 'no/such/model' is neither a model directory")
        assert not (tmp_path / ".loopline").exists()
