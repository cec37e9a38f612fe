"""A run that reads a dataset version is linked to it, and a model registered from that run
carries the version in its provenance and lineage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import loopline as ll
from loopline.config import Settings
from loopline.entities import Ref
from loopline.errors import InvalidInput
from loopline.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(Settings.for_home(tmp_path / "ws", actor="tester"))
    with ll.use_workspace(ws):
        yield ws
    ll.use_workspace(None)
    ws.close()


def test_reading_a_version_in_a_run_links_run_and_model_to_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "train.npy").write_bytes(b"not really numpy")
    added = ll.data.add(tmp_path / "raw", "raw")
    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    with ll.start_run(capture=False) as run:
        checkout = ll.data.load("raw@latest")
        ll.data.use("raw@1")  # recorded once, however often it is read
        info = ll.models.log_model(LogisticRegression().fit(X, y), "model", input_example=X[:2])
    version = ll.models.register(info.model_uri, "clf")
    assert (checkout / "train.npy").read_bytes() == b"not really numpy"
    upstream = workspace.lineage.upstream(Ref("model_version", "clf/1"))
    assert (Ref("dataset_version", "raw@1"), Ref("run", run.run_id), "read") in {
        (e.source, e.target, e.relation) for e in upstream
    }
    assert version.provenance["datasets"] == [
        {"ref": "dataset_version:raw@1", "name": "raw", "version": "1"}
    ]
    used = workspace.events.list(action="dataset.used")
    assert [(e.object_id, e.details["run_id"]) for e in used] == [("raw@1", run.run_id)]
    assert added.version.ref == "raw@1"


def test_use_outside_a_run_is_a_clear_error(workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    ll.data.add(tmp_path / "f.txt", "f")
    with pytest.raises(InvalidInput, match="needs an active run"):
        ll.data.use("f@1")
