"""Runs as a pandas DataFrame with MLflow's column names, so notebooks written against
``mlflow.search_runs`` keep working."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopline.tracking.entities import Run

__all__ = ["runs_to_frame"]

_INFO_COLUMNS = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]


def runs_to_frame(runs: Sequence[Run]) -> Any:
    import pandas as pd

    metric_keys = sorted({k for r in runs for k in r.metrics})
    param_keys = sorted({k for r in runs for k in r.params})
    tag_keys = sorted({k for r in runs for k in r.tags})
    columns: dict[str, list[Any]] = {
        "run_id": [r.info.run_id for r in runs],
        "experiment_id": [r.info.experiment_id for r in runs],
        "status": [r.info.status for r in runs],
        "artifact_uri": [r.info.artifact_uri for r in runs],
        "start_time": pd.to_datetime([r.info.start_time for r in runs], unit="ms", utc=True),
        "end_time": pd.to_datetime([r.info.end_time for r in runs], unit="ms", utc=True),
    }
    for key in metric_keys:
        columns[f"metrics.{key}"] = [r.metrics.get(key) for r in runs]
    for key in param_keys:
        columns[f"params.{key}"] = [r.params.get(key) for r in runs]
    for key in tag_keys:
        columns[f"tags.{key}"] = [r.tags.get(key) for r in runs]
    frame = pd.DataFrame(columns)
    for key in metric_keys:
        frame[f"metrics.{key}"] = frame[f"metrics.{key}"].astype("float64")
    return frame
