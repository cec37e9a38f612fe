"""Tracking records: experiments, runs and what runs log. Field names follow MLflow's, so the
MLflow-compatible API is a rename-free mapping."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from loopline.entities import NewEvent, Ref

__all__ = [
    "ArtifactInfo",
    "Experiment",
    "LifecycleStage",
    "Metric",
    "Run",
    "RunInfo",
    "RunRecord",
    "RunStatus",
    "ViewType",
]


class RunStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class LifecycleStage(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class ViewType(enum.StrEnum):
    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"

    def stages(self) -> tuple[str, ...]:
        if self is ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if self is ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int = 0


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str
    parent_run_id: str | None = None


@dataclass(frozen=True)
class Run:
    """A run with its data: params, the latest value of each metric, and tags."""

    info: RunInfo
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.info.run_id


@dataclass
class RunRecord:
    """A run to be written whole: its row, what was logged to it and the events and lineage
    its creation (and, when ``info`` is terminal, its end) records. Creating a run writes one
    of these in one transaction, and the background writer writes a batch of them (a study's
    trials) with a few statements in all instead of several transactions per run."""

    info: RunInfo
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    links: list[tuple[Ref, Ref, str]] = field(default_factory=list)
    """``(source, target, relation)`` lineage edges."""


@dataclass(frozen=True)
class ArtifactInfo:
    path: str
    is_dir: bool
    size: int | None = None
    digest: str | None = None
