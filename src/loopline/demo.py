"""The guided tour behind ``loopline demo``: it walks the lifecycle as far as Loopline has grown,
on a throw-away embedded workspace (SQLite + local files, no services), and reports each step.

Every capability adds its step here, so the demo doubles as an end-to-end smoke test. Data comes
from scikit-learn's bundled wine dataset: nothing is downloaded.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.entities import Ref
from loopline.workspace import Workspace, init_workspace

__all__ = ["DemoStep", "run_demo"]


@dataclass(frozen=True)
class DemoStep:
    name: str
    result: str
    seconds: float


class _Tour:
    def __init__(self, ws: Workspace, home: Path) -> None:
        self.ws = ws
        self.data_dir = home / "data"
        self.restored = home / "restored"
        self.manifest = ""
        self.dataset = Ref("dataset_version", "wine@1")
        self.best_run = ""
        self.comparison = ""

    def export_dataset(self) -> str:
        from sklearn.datasets import load_wine

        frame = load_wine(as_frame=True).frame
        self.data_dir.mkdir(parents=True, exist_ok=True)
        frame.to_csv(self.data_dir / "wine.csv", index=False)
        (self.data_dir / "README.txt").write_text("UCI wine data, bundled with scikit-learn.\n")
        return f"data/wine.csv, {len(frame)} rows x {frame.shape[1]} columns"

    def version_dataset(self) -> str:
        result = self.ws.data.add(
            self.data_dir / "wine.csv", "wine", message="UCI wine, bundled with scikit-learn"
        )
        v = result.version
        self.manifest = v.digest
        return (
            f"dataset_version:{v.ref} = table of {v.row_count} rows x {len(v.schema or [])} "
            f"columns (canonical Parquet, profiled), manifest {v.digest[:12]}…"
        )

    def store_again(self) -> str:
        result = self.ws.data.add(self.data_dir / "wine.csv", "wine")
        if result.created:
            return "a new version appeared for unchanged data!"
        return f"deduplicated: unchanged content is still {result.version.ref}, nothing written"

    def validate(self) -> str:
        from loopline.data.expectations import save_suite

        suite = self.ws.data.infer_expectations("wine@1")
        save_suite(suite, self.data_dir.parent / "expectations.yaml")
        report = self.ws.data.validate("wine@1", suite)
        verdict = "passed" if report.success else "FAILED"
        return (
            f"{len(suite.expectations)} expectations inferred (expectations.yaml), "
            f"wine@1 {verdict} {report.statistics['passed']}/{report.statistics['evaluated']}"
        )

    def train(self) -> str:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        import loopline as ll

        ll.use_workspace(self.ws)
        ll.set_experiment("wine-demo")
        ll.autolog()
        candidates: dict[str, Any] = {
            "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            "forest-small": RandomForestClassifier(n_estimators=10, max_depth=2, random_state=7),
            "forest-large": RandomForestClassifier(n_estimators=100, random_state=7),
        }
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for name, model in candidates.items():
                    with ll.start_run(run_name=name):
                        ll.seed_everything(7)
                        ll.log_param("dataset", str(self.dataset))
                        frame = ll.data.load("wine@1")  # the run is recorded as reading it
                        X, y = frame.drop(columns="target"), frame["target"]
                        X_train, X_test, y_train, y_test = train_test_split(
                            X, y, test_size=0.3, random_state=7
                        )
                        model.fit(X_train, y_train)
                        ll.log_metric("test_accuracy", float(model.score(X_test, y_test)))
        finally:
            ll.autolog(disable=True)
        return f"{len(candidates)} runs with params, training metrics and an MLflow-format model"

    def compare(self) -> str:
        import loopline as ll

        runs = ll.search_runs(
            filter_string=f"metrics.test_accuracy > 0.5 and params.dataset = '{self.dataset}'",
            order_by=["metrics.test_accuracy DESC"],
        )
        self.best_run = str(runs.iloc[0]["run_id"])
        return "; ".join(
            f"{row['tags.mlflow.runName']} {row['metrics.test_accuracy']:.3f}"
            for _, row in runs.iterrows()
        )

    def trace(self) -> str:
        run = self.ws.tracking.get_run(self.best_run)
        model_files = self.ws.tracking.list_artifacts(self.best_run, "model")
        upstream = self.ws.lineage.upstream_objects(Ref("run", self.best_run))
        return (
            f"model ({len(model_files)} files) <- run {run.info.run_name} "
            f"(git {run.tags.get('mlflow.source.git.commit', 'n/a')[:8]}, "
            f"python {run.tags.get('loopline.python')}) <- " + ", ".join(str(r) for r in upstream)
        )

    def register(self) -> str:
        registry = self.ws.registry
        registry.create_registered_model("wine-classifier", "Best model of the demo tour")
        version = registry.create_model_version(
            "wine-classifier", f"runs:/{self.best_run}/model", run_id=self.best_run
        )
        registry.set_alias("wine-classifier", "champion", version.version)
        found = registry.get_version_by_alias("wine-classifier", "champion")
        data = ", ".join(d["ref"] for d in found.provenance.get("datasets", []))
        return f"wine-classifier v{found.version} @champion <- run {self.best_run[:12]} <- {data}"

    def govern(self) -> str:
        """Production is gated: a policy asks for one approval and a minimum test accuracy, so
        promoting opens a request that a second user (the reviewer) approves."""
        from loopline.events import EventLog

        registry = self.ws.registry
        registry.set_promotion_policy(
            "wine-classifier",
            {
                "alias": "production",
                "approvals": 1,
                "checks": [{"metric": "test_accuracy", "min": 0.8}],
            },
        )
        request = registry.promote("wine-classifier", 1, "production", reason="demo release")
        reviewer = registry.acting_as("reviewer", EventLog(self.ws.store, "reviewer"))
        done = reviewer.approve(request.request_id, comment="accuracy check passed")
        version = registry.get_version_by_alias("wine-classifier", "production")
        return (
            f"request {done.request_id} {done.state} by reviewer ({done.checks[0].detail}); "
            f"production -> v{version.version} (label {version.version_label})"
        )

    def card(self) -> str:
        from loopline.models.card import card

        path = self.data_dir.parent / "wine-classifier-card.md"
        path.write_text(card("wine-classifier/1", workspace=self.ws))
        sections = sum(1 for line in path.read_text().splitlines() if line.startswith("## "))
        return f"model card with {sections} sections -> {path.name}"

    def pipeline(self) -> str:
        """Training as a pipeline (load -> validate -> split -> tune -> train -> evaluate), its
        model registered from the train step's stored output as the challenger."""
        import os

        import loopline as ll
        from loopline.demo_pipeline import wine_training

        # Workers open the workspace through LOOPLINE_HOME.
        os.environ["LOOPLINE_HOME"] = str(self.ws.settings.home)
        ll.use_workspace(self.ws)
        self.suite = str(self.data_dir.parent / "expectations.yaml")
        result = ll.pipelines.run(wine_training, {"suite": self.suite}).raise_for_status()
        self.pipeline_run = result
        (model,) = result.steps["train"].outputs.values()
        version = ll.models.register(
            f"runs:/{result.steps['train'].run_id}/{model.path}", "wine-classifier"
        )
        ll.models.set_alias("wine-classifier", "challenger", version.version)
        accuracy = result.output("evaluate")["test_accuracy"]
        data = ", ".join(d["ref"] for d in version.provenance.get("datasets", []))
        return (
            f"{len(result.executed_steps)} steps ran, test_accuracy {accuracy:.3f}; "
            f"registered as wine-classifier v{version.version} @challenger <- {data}"
        )

    def pipeline_again(self) -> str:
        import loopline as ll
        from loopline.demo_pipeline import wine_training

        again = ll.pipelines.run(wine_training, {"suite": self.suite}).raise_for_status()
        return f"{len(again.cached_steps)} of {len(again.steps)} steps cached, nothing re-ran"

    def pipeline_graph(self) -> str:
        from loopline.pipelines.dag import render

        graph = self.pipeline_run.graph
        (self.data_dir.parent / "pipeline.mmd").write_text(render(graph, "mermaid"))
        order = " -> ".join(node["id"] for node in graph["nodes"])
        return f"{order}; mermaid diagram in pipeline.mmd"

    def serve(self) -> str:
        """The same workspace shared over HTTP: a server on a free loopback port, read back
        through the remote client and the MLflow REST protocol, then stopped."""
        import socket
        import threading

        import httpx
        import uvicorn

        from loopline.config import Settings
        from loopline.server import create_app

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(workspace=self.ws), host="127.0.0.1", port=port, log_level="warning"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.01)
            url = f"http://127.0.0.1:{port}"
            remote = Workspace(Settings.for_home(self.ws.settings.home, tracking_uri=url))
            run = remote.tracking.get_run(self.best_run)
            remote.close()
            answer = httpx.get(
                f"{url}/api/2.0/mlflow/registered-models/alias",
                params={"name": "wine-classifier", "alias": "champion"},
            ).json()
        finally:
            server.should_exit = True
            thread.join(timeout=30)
        return (
            f"{url}: remote client read run {run.info.run_name}; MLflow REST API resolved "
            f"wine-classifier@champion to v{answer['model_version']['version']}"
        )

    def restore(self) -> str:
        import pandas as pd

        out = self.ws.data.checkout("wine@1", self.restored)
        same = pd.read_parquet(out / "data.parquet").equals(pd.read_csv(self.data_dir / "wine.csv"))
        return (
            "checked out, every byte verified; the table equals the exported CSV"
            if same
            else "MISMATCH"
        )

    def collect_garbage(self) -> str:
        loose = self.ws.blobs.put_bytes(b"scratch bytes nobody references")
        gc = self.ws.gc(dry_run=True, grace_seconds=0)
        return (
            f"would delete {gc.deleted} unreferenced blob ({loose[:12]}…), "
            f"keeps {gc.live} referenced"
        )


def run_demo(
    directory: str | os.PathLike[str] | None = None,
    report: Callable[[DemoStep], None] | None = None,
) -> list[DemoStep]:
    """Run every demo step in ``directory`` (a fresh temp dir by default)."""
    home = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="loopline-demo-"))
    steps: list[DemoStep] = []

    def step(name: str, fn: Callable[[], str]) -> None:
        start = time.perf_counter()
        result = fn()
        steps.append(DemoStep(name, result, time.perf_counter() - start))
        if report is not None:
            report(steps[-1])

    start = time.perf_counter()
    ws = init_workspace(home)
    steps.append(
        DemoStep(
            "create workspace", f"{ws.settings.home} (id {ws.id[:12]})", time.perf_counter() - start
        )
    )
    if report is not None:
        report(steps[-1])
    tour = _Tour(ws, home)
    try:
        step("export a dataset", tour.export_dataset)
        step("version it", tour.version_dataset)
        step("store it again", tour.store_again)
        step("validate it", tour.validate)
        step("train 3 models, tracked + autolog", tour.train)
        step("search and compare runs", tour.compare)
        step("trace the best model back", tour.trace)
        step("register it, alias champion", tour.register)
        step("approve promotion to production", tour.govern)
        step("render its model card", tour.card)
        step("train as a pipeline", tour.pipeline)
        step("run the pipeline again", tour.pipeline_again)
        step("the pipeline's DAG", tour.pipeline_graph)
        step("share over HTTP (server + MLflow API)", tour.serve)
        step("restore the data and verify", tour.restore)
        step("garbage collection (dry run)", tour.collect_garbage)
    finally:
        import loopline as ll

        ll.use_workspace(None)
        ws.close()
    return steps
