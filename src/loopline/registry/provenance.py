"""What a model version came from, snapshotted when it is registered.

A run can be edited after the fact (tags changed, metrics appended, even deleted); the version
keeps what was true when it was registered, which is what its model card, lineage view and
promotion checks must show. The snapshot is read from the tracking service and the lineage
graph by :class:`RunFacts`; the registry only stores it.
"""

from __future__ import annotations

from typing import Any

from loopline.errors import NotFound
from loopline.lineage import LineageGraph
from loopline.tracking.service import TrackingService

__all__ = ["DATASET_KINDS", "PROVENANCE_KEYS", "REQUIREMENTS_ARTIFACT", "RunFacts"]

PROVENANCE_KEYS = (
    "run_id",
    "experiment_id",
    "run_name",
    "git",
    "environment",
    "metrics",
    "params",
    "datasets",
)
REQUIREMENTS_ARTIFACT = "loopline/requirements.txt"
"""Where a run's captured environment (pinned distributions) is stored among its artifacts."""
DATASET_KINDS = frozenset({"dataset", "dataset_version"})
EVALUATION_TAG = "loopline.evaluation"
_DATASET_DEPTH = 20
"""How far upstream of a run dataset versions are looked for (through pipeline steps)."""
MODEL_VERSION_TAG = "loopline.model_version"
_GIT_TAGS = {
    "commit": "mlflow.source.git.commit",
    "branch": "mlflow.source.git.branch",
    "repo_url": "mlflow.source.git.repoURL",
    "dirty": "loopline.git.dirty",
}
_ENV_TAGS = {"python": "loopline.python", "platform": "loopline.platform"}


class RunFacts:
    """Reads provenance and evaluation metrics for the registry from tracking and lineage."""

    def __init__(self, tracking: TrackingService, lineage: LineageGraph) -> None:
        self.tracking = tracking
        self.lineage = lineage

    def provenance(self, run_id: str) -> dict[str, Any]:
        """The snapshot for a version registered from ``run_id`` ({} if the run is unknown)."""
        try:
            run = self.tracking.get_run(run_id)
        except NotFound:
            return {}
        git = {k: run.tags[t] for k, t in _GIT_TAGS.items() if t in run.tags}
        if "dirty" in git:
            git["dirty"] = git["dirty"] == "true"
        environment: dict[str, Any] = {
            k: run.tags[t] for k, t in _ENV_TAGS.items() if t in run.tags
        }
        for row in self.tracking.artifact_files(run_id, REQUIREMENTS_ARTIFACT):
            if row.path == REQUIREMENTS_ARTIFACT:
                environment["requirements_digest"] = row.digest
        # Transitively: a pipeline's training step reads its data through upstream steps'
        # outputs, and the model it produced still learned from those dataset versions.
        datasets, seen = [], set()
        for edge in self.lineage.upstream(("run", run_id), max_depth=_DATASET_DEPTH):
            if edge.source.kind in DATASET_KINDS and edge.source not in seen:
                seen.add(edge.source)
                name, _, version = edge.source.id.rpartition("@")
                datasets.append(
                    {"ref": str(edge.source), "name": name or edge.source.id, "version": version}
                )
        return {
            "run_id": run_id,
            "experiment_id": run.info.experiment_id,
            "run_name": run.info.run_name,
            "git": git,
            "environment": environment,
            "metrics": dict(sorted(run.metrics.items())),
            "params": dict(sorted(run.params.items())),
            "datasets": datasets,
        }

    def metrics(
        self, run_id: str | None, name: str, version: int, evaluation: str | None
    ) -> dict[str, float]:
        """Metrics a promotion check reads: the source run's, or those of the newest run
        tagged as evaluation ``evaluation`` of ``name/version`` in the source run's
        experiment."""
        if run_id is None:
            return {}
        try:
            run = self.tracking.get_run(run_id)
        except NotFound:
            return {}
        if evaluation is None:
            return dict(run.metrics)
        runs, _ = self.tracking.search_runs(
            [run.info.experiment_id],
            f"tags.`{EVALUATION_TAG}` = {_quote(evaluation)} AND "
            f"tags.`{MODEL_VERSION_TAG}` = {_quote(f'{name}/{version}')}",
            order_by=["start_time DESC"],
            max_results=1,
        )
        return dict(runs[0].metrics) if runs else {}


def _quote(value: str) -> str:
    """A filter-grammar string literal (quotes doubled, so no value can end it early)."""
    return "'" + value.replace("'", "''") + "'"
