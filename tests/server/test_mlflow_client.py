"""The official MLflow client against a live ``loopline server``: the compatibility claim.

The client runs in its own process with only ``MLFLOW_TRACKING_URI`` pointing at the server, as
an existing MLflow user would; what it logs must then be ordinary Loopline runs and models, and
what Loopline logs must be visible to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import loopline as ll
from loopline.config import Settings
from loopline.workspace import Workspace
from tests.live_server import ThreadServer

SCENARIO = Path(__file__).with_name("mlflow_scenario.py")
X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])  # the scenario's data
Y = np.array([0, 1, 0, 1])


@pytest.fixture(params=["sqlite", "postgresql"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    store = (
        f"sqlite:///{tmp_path / 'ws' / 'loopline.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_uri")
    )
    ws = Workspace(Settings.for_home(tmp_path / "ws", store_uri=store, actor="tester"))
    yield ws
    ws.close()


def _run_scenario(url: str, scratch: Path) -> dict[str, Any]:
    scratch.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    done = subprocess.run(
        [sys.executable, str(SCENARIO), str(scratch)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"MLflow client failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1][len("RESULT ") :])  # type: ignore[no-any-return]


def test_the_mlflow_client_logs_searches_registers_and_loads_models(
    workspace: Workspace, tmp_path: Path
) -> None:
    with ll.use_workspace(workspace):
        ll.set_experiment("from-loopline")
        with ll.start_run(run_name="native"):
            ll.log_metric("rmse", 0.25)
            ll.log_param("depth", 4)
            ll.models.log_model(LogisticRegression().fit(X, Y), "model", input_example=X[:2])
    with ThreadServer(workspace) as server:
        got = _run_scenario(server.url, tmp_path / "scratch")

    assert got["search"] == ["second"]
    assert got["order"] == ["second", "first"]
    assert got["history"] == [[0, 1.0], [1, 0.5], [2, 1 / 3], [3, 0.25], [4, 0.2]]
    assert got["params"] == {"alpha": "0.5", "batch": "32", "beta": "x", "gamma": "3"}
    assert got["latest_loss"] == [[4, 0.2]]
    assert (got["artifacts"], got["notes"]) == (["docs/notes.txt"], "hello")
    assert got["pred"] == got["pred_alias"] == [0, 1, 0, 1]
    assert (got["version"], got["alias_version"]) == ("1", "1")
    assert got["versions"] == [["fraud", "1"]]
    assert got["loopline_runs"] == [["native", {"rmse": 0.25}, {"depth": "4"}]]
    # Models cross both ways: MLflow loads what Loopline wrote, Loopline what MLflow wrote.
    assert got["native_pred"] == [0, 1, 0, 1]
    with ll.use_workspace(workspace):
        for uri in (got["model_uri"], "models:/fraud@champion", "models:/fraud/1"):
            assert ll.models.load(uri).predict(X).tolist() == [0, 1, 0, 1], uri

    # What the MLflow client logged is an ordinary Loopline run, model and lineage.
    run = workspace.tracking.get_run(got["run_id"])
    assert run.info.run_name == "first"
    assert run.params["batch"] == "32" and run.metrics["acc"] == 0.95
    assert [p.value for p in workspace.tracking.get_metric_history(run.run_id, "acc")] == [
        0.9,
        0.95,
    ]
    compat = workspace.tracking.get_experiment_by_name("mlflow-compat").experiment_id
    names = {r.info.run_name for r in workspace.tracking.search_runs([compat])[0]}
    assert names == {"first", "second"}
    version = workspace.registry.get_version_by_alias("fraud", "champion")
    assert (version.version, version.run_id) == (1, got["run_id"])
    upstream = {
        (e.source.kind, e.source.id)
        for e in workspace.lineage.upstream(("model_version", "fraud/1"))
    }
    assert ("run", got["run_id"]) in upstream
    model_files = workspace.registry.model_artifact_files(got["model_uri"].split("/")[-1])
    assert "MLmodel" in {f.path for f in model_files}
