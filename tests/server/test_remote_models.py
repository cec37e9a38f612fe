"""Loading registered models through a server: the remote client reads the files the version
pinned at registration (not the run's current artifacts) and verifies every byte itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import loopline as ll
from loopline.blobs.cas import _key
from loopline.config import Settings
from loopline.errors import IntegrityError, NotFound
from loopline.workspace import Workspace
from tests.live_server import ThreadServer

X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
Y = np.array([0, 1, 0, 1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Workspace, Workspace, str]]:
    """(local workspace, remote workspace through a live server, the model's run id)."""
    local = Workspace(Settings.for_home(tmp_path / "ws", actor="tester"))
    with ll.use_workspace(local):
        with ll.start_run(capture=False) as run:
            ll.models.log_model(LogisticRegression().fit(X, Y), "model", input_example=X[:2])
        ll.models.register(f"runs:/{run.run_id}/model", "fraud")
        ll.models.set_alias("fraud", "champion", 1)
    ll.use_workspace(None)
    with ThreadServer(local) as server:
        remote = Workspace(Settings.for_home(tmp_path / "client", tracking_uri=server.url))
        yield local, remote, run.run_id
        remote.close()
    local.close()


def test_a_remote_load_by_alias_reads_the_pinned_files(
    served: tuple[Workspace, Workspace, str], tmp_path: Path
) -> None:
    local, remote, run_id = served
    # The run's model is replaced after registration by one predicting the opposite.
    flipped = LogisticRegression().fit(X, 1 - Y)
    with ll.use_workspace(local), ll.start_run(run_id=run_id, capture=False):
        ll.models.log_model(flipped, "model", input_example=X[:2])
    ll.use_workspace(None)
    with ll.use_workspace(remote):
        loaded = ll.models.load("models:/fraud@champion")
        files = remote.registry.version_files("fraud", 1)
    assert loaded.predict(X).tolist() == Y.tolist()
    assert {"MLmodel", "model.pkl", "requirements.txt"} <= {f.path for f in files}
    assert files == local.registry.version_files("fraud", 1)
    missing = "/api/v1/registered-models/fraud/versions/1/files/nope"
    http = remote.registry.http  # type: ignore[attr-defined]
    with pytest.raises(NotFound, match="has no file 'nope'"), http.download(missing):
        pass


def test_a_file_altered_in_storage_is_refused_by_the_client(
    served: tuple[Workspace, Workspace, str],
) -> None:
    local, remote, _ = served
    pickle_row = next(r for r in local.registry.version_files("fraud", 1) if r.path == "model.pkl")
    stored = local.blobs.backend.path_for(_key(pickle_row.digest))  # type: ignore[attr-defined]
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.chmod(0o644)
    stored.write_bytes(bytes(data))
    with ll.use_workspace(remote), pytest.raises(IntegrityError, match=r"model\.pkl"):
        ll.models.load("models:/fraud/1")
    ll.use_workspace(None)
