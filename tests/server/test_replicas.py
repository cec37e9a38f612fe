"""The server is stateless: replicas on one PostgreSQL database and one S3 bucket serve the same
data, and artifacts stream through a server process without being held in its memory."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from loopline.config import Settings
from loopline.tracking.validation import make_metric
from loopline.workspace import Workspace
from tests.live_server import ProcessServer
from tests.services import SeaweedS3


def _client(url: str, home: Path) -> Workspace:
    return Workspace(Settings.for_home(home, tracking_uri=url, actor="alice"))


def test_two_replicas_on_postgresql_and_s3_serve_the_same_runs_and_artifacts(
    postgres_uri: str, seaweedfs: SeaweedS3, tmp_path: Path
) -> None:
    s3 = seaweedfs.settings_for(f"replicas-{uuid.uuid4().hex[:8]}")
    env = {
        "LOOPLINE_STORE_URI": postgres_uri,
        "LOOPLINE_ARTIFACT_URI": s3["artifact_uri"],
        "LOOPLINE_S3_ENDPOINT_URL": s3["s3_endpoint_url"],
        "LOOPLINE_S3_ACCESS_KEY_ID": s3["s3_access_key_id"],
        "LOOPLINE_S3_SECRET_ACCESS_KEY": s3["s3_secret_access_key"],
        "LOOPLINE_S3_REGION": s3["s3_region"],
    }
    (tmp_path / "model.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    with (
        ProcessServer(tmp_path / "a", env=env) as first,
        ProcessServer(tmp_path / "b", env=env) as second,
    ):
        one, two = _client(first.url, tmp_path / "c1"), _client(second.url, tmp_path / "c2")
        run = one.tracking.create_run(one.tracking.create_experiment("shared"))
        one.tracking.log_batch(run.run_id, [make_metric("loss", 0.5, 0, 1)], [("lr", "0.1")])
        one.tracking.log_artifact(run.run_id, tmp_path / "model.bin", "weights")
        # Everything written through one replica is read back through the other.
        seen = two.tracking.get_run(run.run_id)
        two.tracking.log_batch(run.run_id, [make_metric("loss", 0.25, 1, 2)])
        got = two.tracking.download_artifacts(run.run_id, "weights", tmp_path / "down")
        history = [m.value for m in one.tracking.get_metric_history(run.run_id, "loss")]
        one.close()
        two.close()
    assert (seen.params, seen.metrics) == ({"lr": "0.1"}, {"loss": 0.5})
    assert history == [0.5, 0.25]
    assert (got / "model.bin").read_bytes() == (tmp_path / "model.bin").read_bytes()


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_large_artifact_streams_through_the_server_in_bounded_memory(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    chunk = os.urandom(1024 * 1024)
    with big.open("wb") as out:
        for _ in range(256):
            out.write(chunk)
    with ProcessServer(tmp_path / "server") as server:
        assert server.proc is not None
        client = _client(server.url, tmp_path / "client")
        run_id = client.tracking.create_run().run_id
        before = _peak_rss_mib(server.proc.pid)
        client.tracking.log_artifact(run_id, big)
        got = client.tracking.download_artifacts(run_id, "big.bin", tmp_path / "down")
        growth = _peak_rss_mib(server.proc.pid) - before
        client.close()
    assert got.stat().st_size == big.stat().st_size
    assert growth < 64, f"server peak RSS grew {growth:.0f} MiB for a 256 MiB round trip"
