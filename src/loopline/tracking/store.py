"""The tracking store contract. Conventions as in :mod:`loopline.store.base`: ``get_*`` raises
NotFound, never returns None; ``create_*`` of a taken name raises AlreadyExists; every method is
one transaction."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from loopline.entities import NewEvent
from loopline.tracking.entities import (
    ArtifactInfo,
    Experiment,
    Metric,
    Run,
    RunInfo,
    RunRecord,
    ViewType,
)
from loopline.tracking.search_filter import Compare, OrderKey

__all__ = ["ArtifactRow", "RunPage", "TrackingStore", "children_of", "write_rows"]


@dataclass(frozen=True)
class ArtifactRow:
    path: str
    digest: str
    size: int


def write_rows(
    rows: Sequence[ArtifactRow],
    root: Path,
    fetch: Callable[[ArtifactRow, Path], object],
    *,
    strip_prefix: str = "",
    what: str = "artifact path",
) -> Path:
    """Lay ``rows`` out under ``root`` (paths with ``strip_prefix`` removed, each checked to
    stay inside ``root``); ``fetch(row, target)`` writes one file, verifying it. The one walk
    behind every download, local or remote, of run artifacts and model files."""
    from loopline.paths import join_inside

    root.mkdir(parents=True, exist_ok=True)
    for row in rows:
        target = join_inside(root, row.path[len(strip_prefix) :], what)
        target.parent.mkdir(parents=True, exist_ok=True)
        fetch(row, target)
    return root


def children_of(rows: Sequence[ArtifactRow], prefix: str) -> list[ArtifactInfo]:
    """The direct children of ``prefix`` among file rows, like ``ls``: files, and directories
    for deeper paths; a prefix naming a file lists that file. Shared by run and model files."""
    children: dict[str, ArtifactInfo] = {}
    for row in rows:
        if row.path == prefix:
            return [ArtifactInfo(row.path, False, row.size, row.digest)]
        rest = row.path[len(prefix) + 1 :] if prefix else row.path
        head, sep, _ = rest.partition("/")
        child = f"{prefix}/{head}" if prefix else head
        if sep:
            children.setdefault(child, ArtifactInfo(child, True))
        else:
            children[child] = ArtifactInfo(child, False, row.size, row.digest)
    return list(children.values())


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    next_offset: int | None
    """Offset of the next page, ``None`` on the last page."""


class TrackingStore(abc.ABC):
    # -- experiments ---------------------------------------------------------------------------
    @abc.abstractmethod
    def create_experiment(
        self, name: str, artifact_location: str | None, tags: dict[str, str]
    ) -> str:
        """Returns the new id. AlreadyExists if the name is taken (deleted experiments too:
        restore or rename those)."""

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """NotFound if no experiment has this id (deleted ones are returned)."""

    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment:
        """NotFound if no experiment has this name."""

    @abc.abstractmethod
    def list_experiments(
        self, view: ViewType = ViewType.ACTIVE_ONLY, max_results: int = 1000, offset: int = 0
    ) -> list[Experiment]:
        """Ordered by id."""

    @abc.abstractmethod
    def search_experiments(
        self,
        filters: Sequence[Compare],
        order_by: Sequence[OrderKey],
        view: ViewType,
        max_results: int,
        offset: int = 0,
    ) -> tuple[list[Experiment], int | None]:
        """Experiments matching every filter (``name``, ``creation_time``,
        ``last_update_time``, ``tags.<key>``), evaluated in SQL; default order: id. Returns the
        page and the offset of the next one (``None`` on the last page)."""

    @abc.abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """AlreadyExists if ``new_name`` is taken."""

    @abc.abstractmethod
    def set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        """Soft delete (``deleted``) or restore (``active``)."""

    @abc.abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    # -- runs ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def insert_runs(self, records: Sequence[RunRecord]) -> None:
        """Write new runs whole (row, tags, params, metrics, events, lineage), all or none, in
        one transaction. NotFound if an experiment does not exist; InvalidInput if it is
        deleted."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """NotFound if no run has this id (deleted runs are returned)."""

    @abc.abstractmethod
    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo: ...

    @abc.abstractmethod
    def set_run_stage(self, run_id: str, stage: str, deleted_time: int | None) -> None: ...

    @abc.abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[tuple[str, str]] = (),
        tags: Sequence[tuple[str, str]] = (),
        events: Sequence[NewEvent] = (),
    ) -> None:
        """All or nothing. A metric point identical to a stored one is a no-op (so a retried
        batch never duplicates). Re-logging a param with the same value is a no-op; with a
        different value it raises Conflict and nothing from the batch is stored. ``events`` are
        appended in the same transaction (the server's audit record of the request)."""

    @abc.abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None:
        """NotFound if the run has no such tag."""

    @abc.abstractmethod
    def get_latest_metrics(self, run_id: str) -> list[Metric]:
        """The latest point (highest step, then timestamp) of every metric of a run, by key."""

    @abc.abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of ``key``, ordered by step then timestamp."""

    @abc.abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filters: Sequence[Compare],
        order_by: Sequence[OrderKey],
        view: ViewType,
        max_results: int,
        offset: int = 0,
    ) -> RunPage:
        """Runs of the given experiments matching every filter, all evaluated in SQL. Default
        order: newest start_time first, then run_id."""

    # -- artifacts -----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_artifacts(self, run_id: str, artifacts: Sequence[ArtifactRow]) -> None:
        """Record files (replacing a path logged before) and reference their blobs."""

    @abc.abstractmethod
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactRow]:
        """Every file under ``prefix`` (a directory path, or '' for all), ordered by path."""

    # -- purge ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def deleted_run_ids(self, deleted_before: int) -> list[str]:
        """Ids of runs soft-deleted before ``deleted_before`` (ms)."""

    @abc.abstractmethod
    def purge_deleted_runs(self, deleted_before: int) -> list[str]:
        """Hard-delete runs soft-deleted before ``deleted_before`` (ms), with their data and
        blob references; returns their ids."""
