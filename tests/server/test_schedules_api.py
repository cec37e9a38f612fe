"""Triggering schedules by an API call: the server records the fire, the running scheduler
launches it; a retried call with the same request id records one fire; admins only with auth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loopline.access import AccessService
from loopline.config import Settings
from loopline.pipelines.scheduler import Scheduler
from loopline.server import ServerOptions
from loopline.store.sql_access import SqlAccessStore
from loopline.workspace import Workspace
from tests.live_server import ThreadServer

TARGET = "tests.pipelines.scheduled_targets:append_line"


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(Settings.for_home(tmp_path / "ws", actor="ops"))
    Scheduler(ws).add_schedule("nightly", TARGET, params={"out": str(tmp_path / "out.txt")})
    yield ws
    ws.close()


def test_an_api_trigger_is_recorded_once_and_launched_by_the_scheduler(
    workspace: Workspace, tmp_path: Path
) -> None:
    with ThreadServer(workspace) as server, httpx.Client(base_url=server.url) as client:
        body = {"params": {"label": "from-api"}, "request_id": "req-1"}
        first = client.post("/api/v1/schedules/nightly/trigger", json=body)
        again = client.post("/api/v1/schedules/nightly/trigger", json=body)
        listed = client.get("/api/v1/schedules").json()
        missing = client.post("/api/v1/schedules/nope/trigger", json={})
        bad = client.post("/api/v1/schedules/nightly/trigger", json={"when": "now"})
        assert (first.status_code, again.status_code) == (200, 200)
        assert first.json()["id"] == again.json()["id"]
        assert (first.json()["status"], first.json()["trigger"]) == ("pending", "manual")
        assert [s["name"] for s in listed["schedules"]] == ["nightly"]
        assert (missing.status_code, bad.status_code) == (404, 400)
        Scheduler(workspace).tick()  # the running scheduler's next tick
        fires = client.get("/api/v1/schedules/nightly/fires").json()["fires"]
    assert [(f["status"], f["params"]["label"]) for f in fires] == [("done", "from-api")]
    (line,) = (tmp_path / "out.txt").read_text().splitlines()
    assert line == "manual:req-1 manual label=from-api"


def test_only_admins_reach_schedules_when_auth_is_on(workspace: Workspace) -> None:
    access = AccessService(SqlAccessStore(workspace.database), workspace.events)
    access.create_user("root", "root-password-long", admin=True)
    access.create_user("ann", "ann-password-long")
    with ThreadServer(workspace, ServerOptions(auth=True)) as server:
        anonymous = httpx.post(f"{server.url}/api/v1/schedules/nightly/trigger", json={})
        plain = httpx.get(f"{server.url}/api/v1/schedules", auth=("ann", "ann-password-long"))
        admin = httpx.get(f"{server.url}/api/v1/schedules", auth=("root", "root-password-long"))
    assert (anonymous.status_code, plain.status_code, admin.status_code) == (401, 403, 200)
