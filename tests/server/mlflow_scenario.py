"""What an existing MLflow user does, run by the official client in its own process.

Started by tests/server/test_mlflow_client.py with ``MLFLOW_TRACKING_URI`` pointing at a live
``loopline server``; prints one ``RESULT <json>`` line the test checks. Argument: a scratch dir.
"""

import json
import sys
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from sklearn.linear_model import LogisticRegression

scratch = Path(sys.argv[1])
notes = scratch / "notes.txt"
notes.write_text("hello")
out: dict = {}
mlflow.set_experiment("mlflow-compat")
with mlflow.start_run(run_name="first") as run:
    mlflow.log_param("alpha", 0.5)
    mlflow.log_params({"beta": "x", "gamma": 3})
    mlflow.set_tag("team", "risk")
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    client = MlflowClient()
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("acc", 0.9, 1700000000000, 0), Metric("acc", 0.95, 1700000000001, 1)],
        params=[Param("batch", "32")],
        tags=[RunTag("stage", "dev")],
    )
    mlflow.log_artifact(str(notes), artifact_path="docs")
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    model = LogisticRegression().fit(X, y)
    info = mlflow.sklearn.log_model(
        model, name="model", input_example=X[:2], serialization_format="cloudpickle"
    )
    out["model_uri"] = info.model_uri
with mlflow.start_run(run_name="second"):
    mlflow.log_metric("loss", 0.05)
    mlflow.log_param("alpha", 0.1)

exp = mlflow.get_experiment_by_name("mlflow-compat")
runs = mlflow.search_runs(
    [exp.experiment_id],
    filter_string="metrics.loss < 0.5 and params.alpha = '0.1'",
    order_by=["metrics.loss ASC"],
    output_format="list",
)
out["search"] = [r.info.run_name for r in runs]
allruns = MlflowClient().search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
out["order"] = [r.info.run_name for r in allruns]
history = MlflowClient().get_metric_history(run.info.run_id, "loss")
out["history"] = [(m.step, m.value) for m in history]
got = MlflowClient().get_run(run.info.run_id)
out["params"] = got.data.params
out["latest_loss"] = [(m.step, m.value) for m in got.data._metric_objs if m.key == "loss"]
out["artifacts"] = [a.path for a in MlflowClient().list_artifacts(run.info.run_id, "docs")]
local = mlflow.artifacts.download_artifacts(
    run_id=run.info.run_id, artifact_path="docs/notes.txt", dst_path=str(scratch / "dl")
)
out["notes"] = Path(local).read_text()
loaded = mlflow.pyfunc.load_model(out["model_uri"])
out["pred"] = loaded.predict(X).tolist()
mv = mlflow.register_model(out["model_uri"], "fraud")
out["version"] = mv.version
client = MlflowClient()
client.set_registered_model_alias("fraud", "champion", mv.version)
out["alias_version"] = client.get_model_version_by_alias("fraud", "champion").version
champion = mlflow.pyfunc.load_model("models:/fraud@champion")
out["pred_alias"] = champion.predict(X).tolist()
out["versions"] = [(v.name, v.version) for v in client.search_model_versions("name = 'fraud'")]
out["run_id"] = run.info.run_id
# A run logged through Loopline's own API, found by the MLflow client.
loopline_runs = MlflowClient().search_runs(
    [MlflowClient().get_experiment_by_name("from-loopline").experiment_id]
)
out["loopline_runs"] = [(r.info.run_name, r.data.metrics, r.data.params) for r in loopline_runs]
# ... and a model Loopline wrote, loaded by MLflow's own loader.
native = mlflow.pyfunc.load_model(f"runs:/{loopline_runs[0].info.run_id}/model")
out["native_pred"] = native.predict(X).tolist()
print("RESULT", json.dumps(out))
