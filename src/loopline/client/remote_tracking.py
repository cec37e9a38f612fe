"""The tracking service of a remote server: :class:`TrackingService`'s interface over HTTP.

The fluent API, the CLI and user code call this exactly as they call the in-process service
(``LOOPLINE_TRACKING_URI`` picks which one a workspace hands out); rules run on the server.
Artifacts stream both ways in 1 MiB chunks.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from loopline.client.http import HttpTransport
from loopline.errors import NotFound
from loopline.paths import iter_files, safe_relpath
from loopline.tracking.entities import (
    ArtifactInfo,
    Experiment,
    Metric,
    Run,
    RunInfo,
    RunStatus,
    ViewType,
)
from loopline.tracking.service import DEFAULT_EXPERIMENT_ID
from loopline.tracking.store import ArtifactRow, write_rows
from loopline.tracking.validation import check_run_id

__all__ = ["RemoteTrackingService"]


def _num(value: float | str | None) -> float:
    """A wire float back: numbers, or "NaN" / "Infinity" / "-Infinity" (null: NaN)."""
    return math.nan if value is None else float(value)


def _json_num(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def metric_from(d: dict[str, Any]) -> Metric:
    return Metric(d["key"], _num(d["value"]), d["timestamp"], d["step"])


def _id(value: str, what: str) -> str:
    """An id for a URL path; an empty one can name nothing (and would change the route)."""
    if not str(value):
        raise NotFound(f"{what} {value!r} does not exist")
    return _q(value)


def experiment_from(d: dict[str, Any]) -> Experiment:
    return Experiment(**d)


def run_info_from(d: dict[str, Any]) -> RunInfo:
    return RunInfo(**d)


def run_from(d: dict[str, Any]) -> Run:
    return Run(
        info=run_info_from(d["info"]),
        params=d["params"],
        metrics={k: _num(v) for k, v in d["metrics"].items()},
        tags=d["tags"],
    )


def _q(value: str) -> str:
    return quote(str(value), safe="")


class RemoteTrackingService:
    def __init__(self, transport: HttpTransport, actor: str) -> None:
        self.http = transport
        self.actor = actor

    def _pages(
        self,
        method: str,
        path: str,
        key: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Any]:
        items: list[Any] = []
        token = None
        while True:
            if body is not None:
                answer = self.http.call(method, path, {**body, "page_token": token})
            else:
                answer = self.http.call(
                    method, path, params={**(params or {}), "page_token": token}
                )
            items.extend(answer[key])
            token = answer.get("next_page_token")
            if not token:
                return items

    # -- experiments -----------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
    ) -> str:
        body = {
            "name": name,
            "artifact_location": artifact_location,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
        }
        return str(self.http.call("POST", "/api/v1/experiments", body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        return experiment_from(
            self.http.call("GET", f"/api/v1/experiments/{_id(experiment_id, 'experiment')}")
        )

    def get_experiment_by_name(self, name: str) -> Experiment:
        return experiment_from(
            self.http.call("GET", "/api/v1/experiments/by-name", params={"name": name})
        )

    def get_or_create_experiment(self, name: str) -> Experiment:
        return experiment_from(
            self.http.call("POST", "/api/v1/experiments/get-or-create", {"name": name})
        )

    def list_experiments(
        self, view: ViewType = ViewType.ACTIVE_ONLY, max_results: int = 1000
    ) -> list[Experiment]:
        answer = self.http.call(
            "GET",
            "/api/v1/experiments",
            params={"view": str(ViewType(view)), "max_results": max_results},
        )
        return [experiment_from(e) for e in answer["experiments"]]

    def search_experiments(
        self,
        view: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Experiment], str | None]:
        params = {
            "view": str(view),
            "max_results": max_results,
            "filter": filter_string,
            "order_by": list(order_by or []) or None,
            "page_token": page_token,
        }
        answer = self.http.call("GET", "/api/v1/experiments", params=params)
        return [experiment_from(e) for e in answer["experiments"]], answer.get("next_page_token")

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.http.call(
            "PATCH", f"/api/v1/experiments/{_id(experiment_id, 'experiment')}", {"name": new_name}
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self.http.call("POST", f"/api/v1/experiments/{_id(experiment_id, 'experiment')}/delete")

    def restore_experiment(self, experiment_id: str) -> None:
        self.http.call("POST", f"/api/v1/experiments/{_id(experiment_id, 'experiment')}/restore")

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.http.call(
            "PUT",
            f"/api/v1/experiments/{_id(experiment_id, 'experiment')}/tags/{_q(key)}",
            {"value": str(value)},
        )

    # -- runs ------------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str = DEFAULT_EXPERIMENT_ID,
        run_name: str | None = None,
        tags: dict[str, Any] | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        user_id: str | None = None,
    ) -> Run:
        body = {
            "experiment_id": str(experiment_id),
            "run_name": run_name,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
            "start_time": start_time,
            "parent_run_id": parent_run_id,
            "user_id": user_id or self.actor,
        }
        return run_from(self.http.call("POST", "/api/v1/runs", body))

    def get_run(self, run_id: str) -> Run:
        return run_from(self.http.call("GET", f"/api/v1/runs/{_q(check_run_id(run_id))}"))

    def update_run(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        body = {
            "status": str(status) if status is not None else None,
            "end_time": end_time,
            "run_name": run_name,
        }
        return run_info_from(
            self.http.call("PATCH", f"/api/v1/runs/{_q(check_run_id(run_id))}", body)
        )

    def end_run(self, run_id: str, status: str = RunStatus.FINISHED) -> RunInfo:
        return self.update_run(run_id, status=status)

    def resume_run(self, run_id: str) -> Run:
        return run_from(self.http.call("POST", f"/api/v1/runs/{_q(check_run_id(run_id))}/resume"))

    def delete_run(self, run_id: str) -> None:
        self.http.call("POST", f"/api/v1/runs/{_q(check_run_id(run_id))}/delete")

    def restore_run(self, run_id: str) -> None:
        self.http.call("POST", f"/api/v1/runs/{_q(check_run_id(run_id))}/restore")

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[tuple[str, Any]] = (),
        tags: Sequence[tuple[str, Any]] = (),
    ) -> None:
        body = {
            "metrics": [
                {
                    "key": m.key,
                    "value": _json_num(m.value),
                    "timestamp": m.timestamp,
                    "step": m.step,
                }
                for m in metrics
            ],
            "params": [{"key": k, "value": str(v)} for k, v in params],
            "tags": [{"key": k, "value": str(v)} for k, v in tags],
        }
        self.http.call("POST", f"/api/v1/runs/{_q(check_run_id(run_id))}/batch", body)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.http.call("DELETE", f"/api/v1/runs/{_q(check_run_id(run_id))}/tags/{_q(key)}")

    def get_latest_metrics(self, run_id: str) -> list[Metric]:
        answer = self.http.call("GET", f"/api/v1/runs/{_q(check_run_id(run_id))}/metrics")
        return [metric_from(p) for p in answer]

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        points = self._pages(
            "GET", f"/api/v1/runs/{_q(check_run_id(run_id))}/metrics/{_q(key)}/history", "metrics"
        )
        return [metric_from(p) for p in points]

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        view: ViewType | str = ViewType.ACTIVE_ONLY,
        page_token: str | None = None,
        experiment_names: Sequence[str] | None = None,
    ) -> tuple[list[Run], str | None]:
        body = {
            "experiment_ids": [str(e) for e in experiment_ids or []],
            "experiment_names": list(experiment_names or []),
            "filter": filter_string,
            "order_by": list(order_by or []),
            "max_results": max_results,
            "view": str(view),
            "page_token": page_token,
        }
        answer = self.http.call("POST", "/api/v1/runs/search", body)
        return [run_from(r) for r in answer["runs"]], answer.get("next_page_token")

    # -- artifacts -------------------------------------------------------------------------------
    def _artifact_url(self, run_id: str, path: str) -> str:
        return f"/api/v1/runs/{_q(check_run_id(run_id))}/artifacts/{quote(path)}"

    def log_stream(self, run_id: str, artifact_path: str, stream: BinaryIO) -> ArtifactRow:
        path = safe_relpath(artifact_path, "artifact path")
        return ArtifactRow(**self.http.upload(self._artifact_url(run_id, path), stream))

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> str:
        source = Path(local_path)
        if not source.is_file():
            raise NotFound(f"file {source} does not exist")
        path = safe_relpath(
            f"{artifact_path}/{source.name}" if artifact_path else source.name, "artifact path"
        )
        with source.open("rb") as handle:
            return self.log_stream(run_id, path, handle).path

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[str]:
        root = Path(local_dir)
        if not root.is_dir():
            raise NotFound(f"directory {root} does not exist")
        paths = []
        for full, rel in iter_files(root):
            target = safe_relpath(
                f"{artifact_path}/{rel}" if artifact_path else rel, "artifact path"
            )
            with full.open("rb") as handle:
                paths.append(self.log_stream(run_id, target, handle).path)
        return paths

    def log_bytes(self, run_id: str, artifact_path: str, data: bytes) -> str:
        import io

        return self.log_stream(run_id, artifact_path, io.BytesIO(data)).path

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactInfo]:
        params = {"path": safe_relpath(path, "artifact path") if path else None}
        items = self._pages(
            "GET", f"/api/v1/runs/{_q(check_run_id(run_id))}/artifacts", "files", params=params
        )
        return [ArtifactInfo(**i) for i in items]

    def artifact_files(self, run_id: str, path: str | None = None) -> list[ArtifactRow]:
        params = {"path": safe_relpath(path, "artifact path") if path else None}
        items = self._pages(
            "GET", f"/api/v1/runs/{_q(check_run_id(run_id))}/artifact-files", "files", params=params
        )
        return [ArtifactRow(**i) for i in items]

    def open_artifact(self, run_id: str, path: str) -> BinaryIO:
        """A spooled local copy of the file (at most 8 MiB kept in memory)."""
        import tempfile

        clean = safe_relpath(path, "artifact path")
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - returned open
        with self.http.download(self._artifact_url(run_id, clean)) as response:
            for chunk in response.iter_bytes(1024 * 1024):
                spool.write(chunk)
        spool.seek(0)
        return spool  # type: ignore[return-value]

    def download_artifacts(
        self, run_id: str, path: str | None, dst: str | os.PathLike[str]
    ) -> Path:
        rows = self.artifact_files(run_id, path)
        if not rows:
            raise NotFound(f"run {run_id} has no artifacts at {path or '(root)'!r}")
        root = write_rows(
            rows,
            Path(dst),
            lambda r, t: self.http.download_to(self._artifact_url(run_id, r.path), t, r.digest),
        )
        return root / safe_relpath(path, "artifact path") if path else root

    # -- maintenance -----------------------------------------------------------------------------
    def deleted_run_ids(self, older_than_ms: int = 0) -> list[str]:
        return list(
            self.http.call("GET", "/api/v1/runs/deleted", params={"older_than_ms": older_than_ms})[
                "run_ids"
            ]
        )

    def purge_deleted_runs(self, older_than_ms: int = 0) -> list[str]:
        return list(
            self.http.call("POST", "/api/v1/runs/purge", {"older_than_ms": older_than_ms})[
                "run_ids"
            ]
        )
