"""Many remote clients logging at once through one live server, and clients that retry.

Sixteen clients, each with its own HTTP connection pool, log batches for a fixed time: half to
runs of their own, half sharing two runs. Every point a client got an answer for must then be
stored exactly once (nothing lost, nothing doubled), the latest value of each metric must be its
highest-step point, and no request may have met a 5xx, even one a retry later hid.

Retries: a batch whose answer was lost (the server committed, the client saw a timeout) is sent
again with the same idempotency key and must not double its points; a client whose server is
still down when it starts must get through once the server comes up within its retry window.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from loopline.client import HttpTransport, RemoteTrackingService
from loopline.config import Settings
from loopline.tracking.entities import Metric
from loopline.tracking.validation import make_metric
from loopline.workspace import Workspace
from tests.live_server import ThreadServer

CLIENTS = 16
SHARED_RUNS = 2
DURATION_S = 20.0
STEPS_PER_BATCH = 10
SHARED_KEYS = ("loss", "accuracy")  # every client writes these, on disjoint steps

Point = tuple[str, int, int, float]  # key, step, timestamp, value


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


def _client(url: str, *, retries: int = 5, backoff: float = 0.05) -> RemoteTrackingService:
    return RemoteTrackingService(HttpTransport(url, retries=retries, backoff=backoff), "tester")


def _stored(tracking: RemoteTrackingService, run_id: str, key: str) -> Counter[Point]:
    return Counter(
        (m.key, m.step, m.timestamp, m.value) for m in tracking.get_metric_history(run_id, key)
    )


@dataclass
class ClientLog:
    """What one client sent and got answers for, and everything that went wrong."""

    index: int
    run_id: str
    points: list[Point] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    batches: int = 0
    server_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)


def _log_until(url: str, log: ClientLog, start: threading.Barrier, stop: threading.Event) -> None:
    """One client's loop: a batch of metrics (disjoint steps from every other client), a new
    param and two tags per round, until ``stop``. Records 5xx answers even when retried."""
    tracking = _client(url)

    def record_5xx(response: httpx.Response) -> None:
        if response.status_code >= 500:
            request = response.request
            log.server_errors.append(f"{request.method} {request.url.path}: {response.status_code}")

    tracking.http.client.event_hooks["response"].append(record_5xx)
    own_key = f"client{log.index}/throughput"
    try:
        start.wait(timeout=60)
        while not stop.is_set():
            n = log.batches
            now = time.time_ns() // 1_000_000
            steps = [
                (n * STEPS_PER_BATCH + s) * CLIENTS + log.index for s in range(STEPS_PER_BATCH)
            ]
            metrics = [
                make_metric(key, log.index + step / 7, step, now)
                for step in steps
                for key in (*SHARED_KEYS, own_key)
            ]
            params = [(f"client{log.index}.param{n}", str(n))]
            tags = [(f"client{log.index}.batch{n}", "done"), (f"client{log.index}.last", str(n))]
            tracking.log_batch(log.run_id, metrics, params, tags)
            log.points.extend((m.key, m.step, m.timestamp, m.value) for m in metrics)
            log.params.update(params)
            log.tags.update(tags)
            log.batches += 1
    except Exception as exc:  # recorded and asserted on; a crashed thread would hide it
        log.exceptions.append(f"{type(exc).__name__}: {exc}")
    finally:
        tracking.http.close()


def test_sixteen_clients_log_concurrently_without_loss_or_duplicates(
    workspace: Workspace,
) -> None:
    with ThreadServer(workspace) as server:
        setup = _client(server.url)
        experiment_id = setup.create_experiment("concurrent")
        shared = [setup.create_run(experiment_id, run_name=f"shared{i}") for i in range(2)]
        logs = []
        for index in range(CLIENTS):
            if index < CLIENTS // 2:
                run_id = setup.create_run(experiment_id, run_name=f"own{index}").info.run_id
            else:
                run_id = shared[index % SHARED_RUNS].info.run_id
            logs.append(ClientLog(index, run_id))

        start, stop = threading.Barrier(CLIENTS + 1), threading.Event()
        threads = [
            threading.Thread(target=_log_until, args=(server.url, log, start, stop), daemon=True)
            for log in logs
        ]
        for thread in threads:
            thread.start()
        start.wait(timeout=60)
        time.sleep(DURATION_S)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a client hung"

        assert {log.index: log.exceptions for log in logs if log.exceptions} == {}
        assert {log.index: log.server_errors for log in logs if log.server_errors} == {}
        assert all(log.batches >= 2 for log in logs), {log.index: log.batches for log in logs}

        by_run: dict[str, list[ClientLog]] = {}
        for log in logs:
            by_run.setdefault(log.run_id, []).append(log)
        assert sorted(len(group) for group in by_run.values()) == [1] * 8 + [4, 4]

        for run_id, group in by_run.items():
            sent: dict[str, Counter[Point]] = {}
            for log in group:
                for point in log.points:
                    sent.setdefault(point[0], Counter())[point] += 1
            assert all(count == 1 for c in sent.values() for count in c.values())
            stored = {key: _stored(setup, run_id, key) for key in sent}
            lost = {k: sorted(sent[k] - stored[k])[:5] for k in sent if sent[k] - stored[k]}
            extra = {k: sorted(stored[k] - sent[k])[:5] for k in sent if stored[k] - sent[k]}
            assert (lost, extra) == ({}, {}), f"run {run_id}: lost or extra points"

            # The latest point of each key is its highest (step, timestamp), whoever wrote it.
            newest = {key: max(points, key=lambda p: (p[1], p[2])) for key, points in sent.items()}
            latest = setup.get_latest_metrics(run_id)
            assert {m.key: (m.key, m.step, m.timestamp, m.value) for m in latest} == newest
            run = setup.get_run(run_id)
            assert run.metrics == {key: point[3] for key, point in newest.items()}
            params = {k: v for log in group for k, v in log.params.items()}
            tags = {k: v for log in group for k, v in log.tags.items()}
            assert {k: run.params.get(k) for k in params} == params
            assert {k: run.tags.get(k) for k in tags} == tags
        setup.http.close()


# -- retries --------------------------------------------------------------------------------------
class LosesFirstAnswer(httpx.BaseTransport):
    """Delivers each request matching ``path_suffix`` to the server, then drops the answer of the
    first one and raises a read timeout: the server committed, the client cannot know it."""

    def __init__(self, path_suffix: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.path_suffix = path_suffix
        self.lost = 0
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith(self.path_suffix):
            return response
        self.keys.append(request.headers.get("idempotency-key"))
        if self.lost:
            return response
        response.read()
        response.close()
        self.lost += 1
        raise httpx.ReadTimeout("the answer was lost on the way back", request=request)

    def close(self) -> None:
        self.inner.close()


def _client_over(url: str, transport: httpx.BaseTransport) -> RemoteTrackingService:
    http = HttpTransport(url, retries=3, backoff=0.01)
    http.client.close()
    http.client = httpx.Client(base_url=url, transport=transport, timeout=60)
    return RemoteTrackingService(http, "tester")


def test_a_retried_batch_stores_its_points_once(workspace: Workspace) -> None:
    with ThreadServer(workspace) as server:
        plain = _client(server.url)
        run_id = plain.create_run(plain.create_experiment("retries")).info.run_id
        metrics = [make_metric("loss", 1 / (s + 1), s, 1_700_000_000_000 + s) for s in range(50)]
        params, tags = [("lr", "0.1")], [("stage", "retried")]

        # The client retries by itself after losing the first answer, with the same key...
        losing = LosesFirstAnswer("/batch")
        retrying = _client_over(server.url, losing)
        retrying.log_batch(run_id, metrics, params, tags)
        assert losing.lost == 1 and len(losing.keys) == 2 and len(set(losing.keys)) == 1
        # ...and user code sends the whole batch again, as after a timeout it gave up on.
        plain.log_batch(run_id, metrics, params, tags)
        plain.log_batch(run_id, metrics[:10], params, tags)

        history = plain.get_metric_history(run_id, "loss")
        assert Counter(history) == Counter(metrics)
        run = plain.get_run(run_id)
        assert (run.metrics, run.params, run.tags.get("stage")) == (
            {"loss": 1 / 50},
            {"lr": "0.1"},
            "retried",
        )
        retrying.http.close()
        plain.http.close()


def test_a_retried_create_returns_the_first_run(workspace: Workspace) -> None:
    with ThreadServer(workspace) as server:
        plain = _client(server.url)
        experiment_id = plain.create_experiment("retried-create")
        losing = LosesFirstAnswer("/api/v1/runs")
        retrying = _client_over(server.url, losing)

        run = retrying.create_run(experiment_id, run_name="once")

        assert losing.lost == 1 and len(set(losing.keys)) == 1
        runs, _ = plain.search_runs([experiment_id])
        assert [r.info.run_id for r in runs] == [run.info.run_id]
        retrying.http.close()
        plain.http.close()


class RefusedUntilUp(httpx.BaseTransport):
    """Signals the first refused connection, so the test starts the server only after the
    client has met it down."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.refused = threading.Event()
        self.refusals = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self.inner.handle_request(request)
        except httpx.ConnectError:
            self.refusals += 1
            self.refused.set()
            raise

    def close(self) -> None:
        self.inner.close()


def test_a_client_started_before_its_server_gets_through_once_it_is_up(
    workspace: Workspace,
) -> None:
    server = ThreadServer(workspace)  # port chosen, nothing listening yet
    transport = RefusedUntilUp()
    http = HttpTransport(server.url, retries=8, backoff=0.1)  # ~13-38 s of backoff in all
    http.client.close()
    http.client = httpx.Client(base_url=server.url, transport=transport, timeout=60)
    client = RemoteTrackingService(http, "tester")
    outcome: dict[str, object] = {}

    def log_once() -> None:
        try:
            run = client.create_run(run_name=f"early-{uuid.uuid4().hex[:6]}")
            client.log_batch(run.info.run_id, [Metric("loss", 0.5, 1_700_000_000_000, 3)])
            outcome["run_id"] = run.info.run_id
        except Exception as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=log_once, daemon=True)
    worker.start()
    assert transport.refused.wait(timeout=60), "the client never tried the server"
    with server:
        worker.join(timeout=120)
        assert not worker.is_alive()
        assert "error" not in outcome, outcome["error"]
        assert transport.refusals >= 1
        stored = workspace.tracking.get_metric_history(str(outcome["run_id"]), "loss")
        assert stored == [Metric("loss", 0.5, 1_700_000_000_000, 3)]
    client.http.close()
