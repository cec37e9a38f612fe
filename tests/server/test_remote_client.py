"""The same Python API and CLI against a server: ``LOOPLINE_TRACKING_URI`` is the only change."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

import loopline as ll
from loopline.config import Settings
from loopline.errors import StoreUnavailable
from loopline.workspace import Workspace
from tests.live_server import ThreadServer, free_port
from tests.test_cli import run


@pytest.fixture
def server_workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(Settings.for_home(tmp_path / "server", actor="server-owner"))
    yield ws
    ws.close()


def test_the_fluent_api_logs_through_the_server(
    server_workspace: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "model.txt").write_text("weights")
    with ThreadServer(server_workspace) as server:
        client = Workspace(
            Settings.for_home(tmp_path / "client", tracking_uri=server.url, actor="alice")
        )
        assert client.remote
        with ll.use_workspace(client):
            ll.set_experiment("remote")
            with ll.start_run(run_name="over-http") as run:
                ll.log_params({"lr": 0.1, "layers": 3})
                for step in range(300):
                    ll.log_metric("loss", 1 / (step + 1), step=step)
                ll.log_metric("odd", math.inf)
                ll.set_tag("team", "risk")
                ll.log_artifact(tmp_path / "model.txt", "weights")
                ll.log_dict({"a": 1}, "config.json")
            found = ll.search_runs(
                filter_string="params.lr = '0.1'",
                experiment_names=["remote"],
                output_format="list",
            )
        ll.use_workspace(None)
        client.close()

    # Stored by the server, in the server's stores: nothing was written on the client side.
    stored = server_workspace.tracking.get_run(run.run_id)
    assert (stored.info.status, stored.info.user_id) == ("FINISHED", "alice")
    assert stored.params == {"lr": "0.1", "layers": "3"}
    assert stored.metrics == {"loss": 1 / 300, "odd": math.inf}
    history = server_workspace.tracking.get_metric_history(run.run_id, "loss")
    assert [m.step for m in history] == list(range(300))
    files = {r.path for r in server_workspace.tracking.artifact_files(run.run_id)}
    assert {"weights/model.txt", "config.json"} <= files
    assert [r.run_id for r in found] == [run.run_id]
    assert not (tmp_path / "client" / ".loopline" / "loopline.db").exists()


def test_the_cli_lists_and_shows_runs_of_a_server(
    server_workspace: Workspace, tmp_path: Path
) -> None:
    run_id = server_workspace.tracking.create_run("0", run_name="seen-remotely").run_id
    server_workspace.tracking.log_batch(run_id, params=[("depth", "4")])
    with ThreadServer(server_workspace) as server:
        env = {"LOOPLINE_TRACKING_URI": server.url}
        listed = run("runs", "list", cwd=tmp_path, env=env)
        shown = run("runs", "show", run_id, cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "seen-remotely" in listed.stdout
    assert shown.returncode == 0, shown.stderr
    assert "depth" in shown.stdout


def test_an_unreachable_server_is_a_clear_error_after_retries(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    from loopline.client import HttpTransport, RemoteTrackingService

    service = RemoteTrackingService(HttpTransport(url, retries=2, backoff=0.01), "alice")
    with pytest.raises(StoreUnavailable, match="cannot reach the tracking server"):
        service.get_run("0" * 32)
    result = run("runs", "list", cwd=tmp_path, env={"LOOPLINE_TRACKING_URI": "ftp://nowhere"})
    assert result.returncode != 0
    assert "tracking_uri" in result.stderr + result.stdout


def test_events_and_lineage_reach_the_server_from_a_remote_client(
    server_workspace: Workspace, tmp_path: Path
) -> None:
    with ThreadServer(server_workspace) as server:
        client = Workspace(
            Settings.for_home(tmp_path / "client", tracking_uri=server.url, actor="alice")
        )
        with ll.use_workspace(client):
            ll.record_event(None, "dataset.checked", "dataset", "wine@1", {"rows": 178})
            created = [ll.link(("dataset", "wine@1"), ("run", "r1"), "trained") for _ in range(2)]
            ll.link(("run", "r1"), ("model_version", "wine/1"), "registered_as")
            up = ll.upstream(("model_version", "wine/1"))
            listed = client.events.list(action="dataset.checked")
        ll.use_workspace(None)
        client.close()
    assert created == [True, False]
    assert [(e.source.id, e.target.id, e.depth) for e in up] == [
        ("r1", "wine/1", 1),
        ("wine@1", "r1", 2),
    ]
    stored = server_workspace.events.list(action="dataset.checked")
    assert [(e.actor, e.object_id, e.details) for e in stored] == [
        ("alice", "wine@1", {"rows": 178})
    ]
    assert [e.id for e in listed] == [e.id for e in stored]
    assert server_workspace.lineage.upstream_objects(("model_version", "wine/1"))


def test_a_study_tracks_its_trials_through_the_server(
    server_workspace: Workspace, tmp_path: Path
) -> None:
    """Against a server there is no queued creation: each trial's run is created through the
    API, and the study reads back the same as in-process."""
    pytest.importorskip("optuna", reason="tuning needs the 'tune' extra (optuna)")
    with ThreadServer(server_workspace) as server:
        client = Workspace(
            Settings.for_home(tmp_path / "client", tracking_uri=server.url, actor="alice")
        )
        with ll.use_workspace(client):
            result = ll.tune(
                lambda p: (p["x"] - 1.0) ** 2,
                {"x": ("uniform", 0.0, 2.0)},
                4,
                "minimize",
                storage="memory",
                seed=3,
            )
        ll.use_workspace(None)
        client.close()
    kids = server_workspace.tracking.search_runs(
        [server_workspace.tracking.get_run(result.parent_run_id).info.experiment_id],
        f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'",
    )[0]
    assert sorted(r.run_id for r in kids) == sorted(t.run_id for t in result.trials)  # type: ignore[misc]
    for kid in kids:
        assert kid.info.status == "FINISHED" and kid.info.user_id == "alice"
        assert set(kid.params) == {"x"} and "objective" in kid.metrics
