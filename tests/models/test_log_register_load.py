"""Log a model in a run, register it, alias it and load it back by every kind of URI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import loopline as ll
from loopline.config import Settings
from loopline.errors import ConfigError, IntegrityError
from loopline.workspace import Workspace

X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
Y = np.array([0, 1, 0, 1])


def _logged(workspace: Workspace) -> tuple[ll.models.ModelInfo, LogisticRegression]:
    model = LogisticRegression().fit(X, Y)
    with ll.start_run(run_name="train"):
        info = ll.models.log_model(model, "model", input_example=X[:2])
    return info, model


def test_a_logged_model_registers_aliases_and_loads_by_every_uri(
    workspace: Workspace, tmp_path: Path
) -> None:
    info, model = _logged(workspace)
    version = ll.models.register(info.model_uri, "fraud")
    again = ll.models.register(info.model_uri, "fraud")
    ll.models.set_alias("fraud", "champion", version.version)
    expected = model.predict(X).tolist()
    got = {
        uri: ll.models.load(uri).predict(X).tolist()
        for uri in (info.model_uri, "models:/fraud@champion", "models:/fraud/1", "models:/fraud/2")
    }
    assert (version.version, again.version, version.run_id) == (1, 2, info.run_id)
    assert got == dict.fromkeys(got, expected)
    loaded = ll.models.load("models:/fraud@champion")
    assert loaded.signature["inputs"] is not None
    assert loaded.predict({"a": [0.0], "b": [1.0]}).tolist() == model.predict(X[:1]).tolist()
    out = ll.models.download("models:/fraud/1", tmp_path / "copy")
    assert {"MLmodel", "model.pkl", "requirements.txt"} <= {p.name for p in out.iterdir()}
    assert ll.models.read_mlmodel(out)["flavors"]["sklearn"]["pickled_model"] == "model.pkl"


def test_bad_uris_and_unknown_names_are_clear_errors(workspace: Workspace) -> None:
    info, _ = _logged(workspace)
    ll.models.register(info.model_uri, "fraud")

    def raised(uri: str) -> str:
        try:
            ll.models.load(uri)
        except Exception as exc:
            return type(exc).__name__
        return "nothing"

    got = {
        uri: raised(uri)
        for uri in (
            "s3://bucket/model",
            "models:/fraud",
            "models:/fraud@nobody",
            "models:/nobody/1",
            f"runs:/{info.run_id}/nothing-here",
            "models:/fraud/../../x",
        )
    }
    assert got == {
        "s3://bucket/model": "InvalidInput",
        "models:/fraud": "InvalidInput",
        "models:/fraud@nobody": "NotFound",
        "models:/nobody/1": "NotFound",
        f"runs:/{info.run_id}/nothing-here": "NotFound",
        "models:/fraud/../../x": "InvalidInput",
    }


def test_a_model_file_altered_after_registration_refuses_to_load(workspace: Workspace) -> None:
    info, _ = _logged(workspace)
    ll.models.register(info.model_uri, "fraud")
    row = next(
        r
        for r in workspace.tracking.artifact_files(info.run_id, "model")
        if r.path.endswith(".pkl")
    )
    from loopline.blobs.cas import _key

    stored = workspace.blobs.backend.path_for(_key(row.digest))  # type: ignore[attr-defined]
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.chmod(0o644)
    stored.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        ll.models.load("models:/fraud/1")


def test_through_a_tracking_uri_the_registry_is_remote_and_refuses_logged_models_clearly(
    tmp_path: Path,
) -> None:
    from loopline.client.remote_registry import RemoteRegistryService

    remote = Workspace(Settings.for_home(tmp_path, tracking_uri="http://127.0.0.1:9"))
    assert isinstance(remote.registry, RemoteRegistryService)
    with pytest.raises(ConfigError, match="MLFLOW_TRACKING_URI"):
        remote.registry.create_logged_model("0")  # makes no request: nothing listens on :9


def test_a_version_pins_its_files_at_registration(workspace: Workspace, tmp_path: Path) -> None:
    info, _ = _logged(workspace)
    version = ll.models.register(info.model_uri, "fraud")
    assert version.files_digest is not None
    # The run's model is overwritten afterwards by a model that predicts the opposite...
    flipped = LogisticRegression().fit(X, 1 - Y)
    ll.models.log_model(flipped, "model", run_id=info.run_id)
    assert ll.models.load(info.model_uri).predict(X).tolist() == (1 - Y).tolist()
    # ...but version 1 loads exactly the files it was registered with.
    assert ll.models.load("models:/fraud/1").predict(X).tolist() == Y.tolist()
    # The pinned files outlive the run: deleted, purged and garbage-collected.
    workspace.tracking.delete_run(info.run_id)
    report = workspace.gc(grace_seconds=0)
    assert report.purged_runs == [info.run_id]
    assert ll.models.load("models:/fraud/1").predict(X).tolist() == Y.tolist()
    # Deleting the version releases them.
    workspace.registry.delete_model_version("fraud", 1)
    assert workspace.gc(grace_seconds=0).deleted > 0
