"""What a model version records at registration: a semantic label (major on a signature change,
minor on a retrain, patch for the same files) and a provenance snapshot of its run (code
commit, environment, metrics, params, datasets), in-process and through a live server."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import loopline as ll
from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.registry.entities import ModelVersion
from loopline.registry.service import RegistryService
from loopline.workspace import Workspace
from tests.live_server import ThreadServer

X = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [0.5, 0.5, 1.0], [0.9, 0.1, 0.0]])
Y = np.array([0, 1, 0, 1])
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(params=["in-process", "server"])
def registry(request: pytest.FixtureRequest, workspace: Workspace) -> Iterator[RegistryService]:
    if request.param == "in-process":
        yield workspace.registry
        return
    with ThreadServer(workspace) as server:
        remote = Workspace(Settings.for_home(workspace.settings.home, tracking_uri=server.url))
        yield remote.registry  # type: ignore[misc]
        remote.close()


def _log(columns: int = 3, c: float = 1.0, **metrics: float) -> tuple[str, str]:
    """A model logged in a new run (with a commit tag and metrics): its URI and run id."""
    model = LogisticRegression(C=c).fit(X[:, :columns], Y)
    with ll.start_run(capture=False) as run:
        ll.set_tags({"mlflow.source.git.commit": COMMIT, "loopline.python": "3.11.9"})
        ll.log_params({"C": c})
        ll.log_metrics(metrics or {"auc": 0.9})
        info = ll.models.log_model(model, "model", input_example=X[:2, :columns])
    return info.model_uri, run.run_id


def _register(registry: RegistryService, uri: str, label: str | None = None) -> ModelVersion:
    run_id = uri.split("/")[1]
    return registry.create_model_version("fraud", uri, run_id=run_id, version_label=label)


def test_labels_follow_what_changed(workspace: Workspace, registry: RegistryService) -> None:
    registry.create_registered_model("fraud")
    first, _ = _log()
    retrained, _ = _log(c=0.5)
    narrower, _ = _log(columns=2)
    labels = [
        _register(registry, first).version_label,  # the first version
        _register(registry, first).version_label,  # the same files again: metadata only
        _register(registry, retrained).version_label,  # new weights, same signature
        _register(registry, narrower).version_label,  # one input column fewer
        _register(registry, first, "5.0.0").version_label,  # overridden
        _register(registry, retrained).version_label,  # carries on from the override
    ]
    assert labels == ["1.0.0", "1.0.1", "1.1.0", "2.0.0", "5.0.0", "5.1.0"]
    assert registry.get_model_version("fraud", 4).version_label == "2.0.0"


@pytest.mark.parametrize("bad", ["1.0", "v1.0.0", "1.0.0-rc1", "01.0.0", ""])
def test_a_malformed_label_names_the_field(
    workspace: Workspace, registry: RegistryService, bad: str
) -> None:
    registry.create_registered_model("fraud")
    uri, _ = _log()
    with pytest.raises(InvalidInput, match=r"version_label must look like MAJOR\.MINOR\.PATCH"):
        _register(registry, uri, bad)
    assert registry.search_model_versions("name = 'fraud'")[0] == []


def test_provenance_is_a_snapshot_of_the_run_at_registration(
    workspace: Workspace, registry: RegistryService
) -> None:
    uri, run_id = _log(auc=0.93, f1=0.8)
    workspace.lineage.link(("dataset_version", "transactions@7"), ("run", run_id), "read")
    registry.create_registered_model("fraud")
    version = _register(registry, uri)
    with ll.start_run(run_id=run_id, capture=False):
        ll.log_metric("auc", 0.5)  # logged after registration: not part of the record
    record = registry.get_model_version("fraud", version.version).provenance
    assert record["run_id"] == run_id
    assert record["git"] == {"commit": COMMIT}
    assert record["environment"]["python"] == "3.11.9"
    assert record["metrics"] == {"auc": 0.93, "f1": 0.8}
    assert record["params"] == {"C": "1.0"}
    assert record["datasets"] == [
        {"ref": "dataset_version:transactions@7", "name": "transactions", "version": "7"}
    ]
    assert workspace.tracking.get_run(run_id).metrics["auc"] == 0.5


def test_captured_requirements_are_referenced_by_digest(workspace: Workspace) -> None:
    model = LogisticRegression().fit(X, Y)
    with ll.start_run() as run:  # capture on: requirements land in loopline/requirements.txt
        info = ll.models.log_model(model, "model", input_example=X[:2])
    version = ll.models.register(info.model_uri, "fraud")
    (row,) = [
        r
        for r in workspace.tracking.artifact_files(run.run_id)
        if r.path == "loopline/requirements.txt"
    ]
    assert version.provenance["environment"]["requirements_digest"] == row.digest
    assert b"scikit-learn==" in workspace.blobs.read_bytes(row.digest)


def test_a_version_without_a_run_has_an_empty_record(registry: RegistryService) -> None:
    registry.create_registered_model("external")
    version = registry.create_model_version("external", "s3://bucket/model")
    assert (version.provenance, version.version_label) == ({}, "1.0.0")
