"""The server's own behaviour: probes, metrics, limits, error bodies, traversal, idempotency,
pagination. Each test talks HTTP to a real server on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loopline.config import Settings
from loopline.server import ServerOptions
from loopline.tracking.validation import make_metric
from loopline.workspace import Workspace
from tests.live_server import ThreadServer


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(Settings.for_home(tmp_path / "ws", actor="tester"))
    yield ws
    ws.close()


@pytest.fixture
def server(workspace: Workspace) -> Iterator[ThreadServer]:
    options = ServerOptions(max_body_bytes=64 * 1024, max_artifact_bytes=1024, max_page_size=5)
    with ThreadServer(workspace, options) as live:
        yield live


@pytest.fixture
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_probes_metrics_and_openapi_answer(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ok"}
    http.get("/api/v1/experiments")
    http.get("/api/v1/runs/" + "0" * 32)
    text = http.get("/metrics").text
    assert (
        'loopline_http_requests_total{method="GET",route="/api/v1/experiments",status="200"}'
        in text
    )
    assert (
        'loopline_http_errors_total{code="RESOURCE_DOES_NOT_EXIST",route="/api/v1/runs/{run_id}"}'
        in text
    )
    assert "loopline_http_request_duration_seconds_bucket" in text
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/api/v1/runs", "/api/v1/runs/search", "/api/v1/runs/{run_id}/batch"} <= set(paths)


def test_errors_are_json_with_a_code_on_native_and_mlflow_routes(http: httpx.Client) -> None:
    answers = {
        "native missing run": http.get("/api/v1/runs/" + "0" * 32),
        "native bad body": http.post("/api/v1/runs", json={"experiment_id": "0", "bogus": 1}),
        "mlflow missing run": http.get("/api/2.0/mlflow/runs/get", params={"run_id": "0" * 32}),
        "mlflow missing field": http.post("/api/2.0/mlflow/experiments/create", json={}),
        "mlflow bad json": http.post(
            "/api/2.0/mlflow/runs/create",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        "unknown route": http.get("/api/2.0/mlflow/traces"),
        "id beyond 64 bits": http.get("/api/v1/experiments/" + "9" * 30),
        "mlflow id beyond 64 bits": http.get(
            "/api/2.0/mlflow/experiments/get", params={"experiment_id": "9" * 30}
        ),
        "after_id beyond 64 bits": http.get("/api/v1/events", params={"after_id": "9" * 30}),
        "wrong method": http.delete("/api/v1/runs/search"),
    }
    got = {name: (r.status_code, r.json()["error_code"]) for name, r in answers.items()}
    assert got == {
        "native missing run": (404, "RESOURCE_DOES_NOT_EXIST"),
        "native bad body": (400, "INVALID_PARAMETER_VALUE"),
        "mlflow missing run": (404, "RESOURCE_DOES_NOT_EXIST"),
        "mlflow missing field": (400, "INVALID_PARAMETER_VALUE"),
        "mlflow bad json": (400, "INVALID_PARAMETER_VALUE"),
        "unknown route": (404, "ENDPOINT_NOT_FOUND"),
        "id beyond 64 bits": (404, "RESOURCE_DOES_NOT_EXIST"),
        "mlflow id beyond 64 bits": (404, "RESOURCE_DOES_NOT_EXIST"),
        "after_id beyond 64 bits": (400, "INVALID_PARAMETER_VALUE"),
        "wrong method": (405, "METHOD_NOT_ALLOWED"),
    }
    assert "bogus" in answers["native bad body"].json()["message"]
    assert "'name'" in answers["mlflow missing field"].json()["message"]


def test_bodies_and_uploads_over_their_limits_get_413_and_store_nothing(
    http: httpx.Client, workspace: Workspace
) -> None:
    run_id = workspace.tracking.create_run("0").run_id
    big_batch = {"params": [{"key": f"p{i}", "value": "x" * 1000} for i in range(100)]}
    too_big = http.post(f"/api/v1/runs/{run_id}/batch", json=big_batch)
    upload = http.put(f"/api/v1/runs/{run_id}/artifacts/big.bin", content=b"x" * 2048)
    small = http.put(f"/api/v1/runs/{run_id}/artifacts/small.bin", content=b"x" * 512)
    assert (too_big.status_code, upload.status_code, small.status_code) == (413, 413, 200)
    assert too_big.json()["error_code"] == upload.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert workspace.tracking.get_run(run_id).params == {}
    assert [r.path for r in workspace.tracking.artifact_files(run_id)] == ["small.bin"]


TRAVERSALS = ["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a%2F..%2F..%2Fx", "%2E%2E/x", "a/%00b"]


def test_traversal_paths_are_refused_on_upload_and_download(
    http: httpx.Client, workspace: Workspace
) -> None:
    run = workspace.tracking.create_run("0")
    base = f"/api/2.0/mlflow-artifacts/artifacts/0/{run.run_id}/artifacts/"
    got = {}
    for raw in TRAVERSALS:
        got[("native put", raw)] = http.put(
            f"/api/v1/runs/{run.run_id}/artifacts/{raw}", content=b"x"
        ).status_code
        got[("native get", raw)] = http.get(
            f"/api/v1/runs/{run.run_id}/artifacts/{raw}"
        ).status_code
        got[("mlflow put", raw)] = http.put(base + raw, content=b"x").status_code
        got[("mlflow get", raw)] = http.get(base + raw).status_code
    # Refused as bad input (400), or the path names nothing (404): never stored, never served.
    assert {k: v in (400, 404) for k, v in got.items()} == {k: True for k in got}
    assert workspace.tracking.artifact_files(run.run_id) == []


def test_a_retried_create_with_the_same_idempotency_key_creates_once(
    http: httpx.Client, workspace: Workspace
) -> None:
    first = http.post(
        "/api/v1/runs", json={"experiment_id": "0"}, headers={"idempotency-key": "k1"}
    )
    again = http.post(
        "/api/v1/runs", json={"experiment_id": "0"}, headers={"idempotency-key": "k1"}
    )
    other = http.post(
        "/api/v1/runs", json={"experiment_id": "0"}, headers={"idempotency-key": "k2"}
    )
    mlflow = [
        http.post(
            "/api/2.0/mlflow/runs/create",
            json={"experiment_id": "0"},
            headers={"idempotency-key": "k3"},
        )
        for _ in range(2)
    ]
    ids = [r.json()["info"]["run_id"] for r in (first, again, other)]
    assert ids[0] == ids[1] != ids[2]
    assert mlflow[0].json() == mlflow[1].json()
    assert len(workspace.tracking.search_runs(["0"])[0]) == 3


def test_every_list_is_paged_and_capped_at_the_maximum_page_size(
    http: httpx.Client, workspace: Workspace
) -> None:
    run_id = workspace.tracking.create_run("0").run_id
    workspace.tracking.log_batch(run_id, [make_metric("m", float(i), i) for i in range(12)])
    for _ in range(6):
        workspace.tracking.create_run("0")
    seen, token, pages = [], None, 0
    while True:
        page = http.get(
            f"/api/v1/runs/{run_id}/metrics/m/history",
            params={"max_results": 1000, **({"page_token": token} if token else {})},
        ).json()
        seen += [p["step"] for p in page["metrics"]]
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    runs = http.post("/api/v1/runs/search", json={"max_results": 1000}).json()
    mlflow_runs = http.post("/api/2.0/mlflow/runs/search", json={"max_results": 1000}).json()
    assert (seen, pages) == (list(range(12)), 3)
    assert (len(runs["runs"]), bool(runs["next_page_token"])) == (5, True)
    assert (len(mlflow_runs["runs"]), bool(mlflow_runs["next_page_token"])) == (5, True)


def test_mutating_requests_are_audited_with_actor_object_and_client(
    http: httpx.Client, workspace: Workspace
) -> None:
    run_id = http.post("/api/v1/runs", json={"experiment_id": "0"}).json()["info"]["run_id"]
    http.post(f"/api/v1/runs/{run_id}/batch", json={"params": [{"key": "a", "value": "1"}]})
    clash = http.post(f"/api/v1/runs/{run_id}/batch", json={"params": [{"key": "a", "value": "2"}]})
    http.post("/api/v1/runs/search", json={})
    events = workspace.events.list(action="audit")
    got = [
        (e.actor, e.object_kind, e.object_id, e.details["method"], e.details["status"])
        for e in events
    ]
    # One record per request: a batch commits its record with its data; the refused batch
    # (nothing stored) is recorded with its status.
    assert clash.status_code == 409
    assert got == [
        ("tester", "run", run_id, "POST", 200),
        ("tester", "run", run_id, "POST", 200),
        ("tester", "run", run_id, "POST", 409),
    ]
    assert {e.details["client"] for e in events} == {"127.0.0.1"}
