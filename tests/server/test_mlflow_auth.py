"""The MLflow client's own credential variables work against a server with auth on."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline.access import Role
from loopline.config import Settings
from loopline.server import ServerOptions
from loopline.server.context import ServerState
from loopline.workspace import Workspace
from tests.live_server import ThreadServer

SCRIPT = """
import sys, mlflow
mlflow.set_experiment(sys.argv[1])
with mlflow.start_run() as run:
    mlflow.log_metric("m", 1.5)
print("RUN", run.info.run_id)
"""


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[Workspace, ThreadServer, str]]:
    ws = Workspace(Settings.for_home(tmp_path / "ws", actor="server"))
    with ThreadServer(ws, ServerOptions(auth=True)) as server:
        access = ServerState(ws, ServerOptions(auth=True)).access
        access.create_user("bob", "bob-password-1")
        access.create_user("eve", "eve-password-1")
        _, token = access.create_token("bob", "ci")
        yield ws, server, token
    ws.close()


def _mlflow(url: str, experiment: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LOOPLINE_"))}
    full.update(MLFLOW_TRACKING_URI=url, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, experiment],
        env=full,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_mlflow_token_and_basic_credentials_work_and_missing_ones_fail(
    secured: tuple[Workspace, ThreadServer, str],
) -> None:
    ws, server, token = secured
    with_token = _mlflow(server.url, "by-token", MLFLOW_TRACKING_TOKEN=token)
    with_basic = _mlflow(
        server.url,
        "by-password",
        MLFLOW_TRACKING_USERNAME="bob",
        MLFLOW_TRACKING_PASSWORD="bob-password-1",
    )
    anonymous = _mlflow(server.url, "anonymous")
    wrong = _mlflow(
        server.url, "wrong", MLFLOW_TRACKING_USERNAME="bob", MLFLOW_TRACKING_PASSWORD="nope-nope"
    )
    assert with_token.returncode == 0, with_token.stderr[-2000:]
    assert with_basic.returncode == 0, with_basic.stderr[-2000:]
    assert anonymous.returncode != 0 and "UNAUTHENTICATED" in anonymous.stderr
    assert wrong.returncode != 0 and "UNAUTHENTICATED" in wrong.stderr

    run_id = with_token.stdout.split("RUN ")[1].strip()
    run = ws.tracking.get_run(run_id)
    assert (run.info.user_id, run.metrics) == ("bob", {"m": 1.5})
    # bob created both experiments, so he administers them; eve holds no role on them.
    access = ServerState(ws, ServerOptions(auth=True)).access
    experiment = ws.tracking.get_experiment_by_name("by-token").experiment_id
    assert [(g.user_name, g.role) for g in access.list_grants(object_id=experiment)] == [
        ("bob", Role.ADMIN)
    ]
    as_eve = _mlflow(
        server.url,
        "by-token",
        MLFLOW_TRACKING_USERNAME="eve",
        MLFLOW_TRACKING_PASSWORD="eve-password-1",
    )
    assert as_eve.returncode != 0 and "PERMISSION_DENIED" in as_eve.stderr
