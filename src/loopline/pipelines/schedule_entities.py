"""Plain records of the scheduler: a registered :class:`Schedule` and each :class:`Fire` of it.

Frozen dataclasses, as every other domain's entities, so a caller can keep one without it
changing underneath. The SQL store builds them; the service and the CLI read them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "CATCH_UP_POLICIES",
    "FIRE_STATUSES",
    "TRIGGER_KINDS",
    "CatchUp",
    "Fire",
    "FireStatus",
    "NewFire",
    "NewSchedule",
    "Schedule",
    "TriggerKind",
]

TriggerKind = Literal["cron", "dataset", "alert", "manual"]
CatchUp = Literal["latest", "all"]
FireStatus = Literal["pending", "launched", "done", "failed"]

TRIGGER_KINDS: tuple[str, ...] = ("cron", "dataset", "alert", "manual")
CATCH_UP_POLICIES: tuple[str, ...] = ("latest", "all")
FIRE_STATUSES: tuple[str, ...] = ("pending", "launched", "done", "failed")
UNFINISHED: tuple[str, ...] = ("pending", "launched")
"""Statuses of a fire whose launch has not ended: what recovery re-launches once its lease is
over."""


@dataclass(frozen=True)
class NewSchedule:
    """A schedule about to be created; the service has validated every field. ``cursor`` is
    where the trigger starts watching (see :attr:`Schedule.cursor`)."""

    name: str
    target: str
    kind: str
    params: dict[str, str]
    cron: str | None
    dataset: str | None
    alert: str | None
    timezone: str
    catch_up: str
    created_by: str
    cursor: int | None
    event_floor_id: int | None = None


@dataclass(frozen=True)
class Schedule:
    """A registered schedule: what to launch (``target`` with ``params``) and when (``kind``).

    ``cursor`` is how far the trigger has been consumed, by kind: the last fired scheduled time
    in ms (cron), the last seen dataset version (dataset), the last seen event id (alert);
    ``None`` for manual schedules. It only moves forward, in the same transaction that records
    a fire, so a restarted scheduler resumes exactly where the last one stopped.
    """

    id: int
    name: str
    target: str
    kind: str
    params: dict[str, str]
    cron: str | None
    dataset: str | None
    alert: str | None
    timezone: str
    catch_up: str
    enabled: bool
    cursor: int | None
    event_floor_id: int | None
    created_ms: int
    updated_ms: int
    created_by: str

    @property
    def trigger(self) -> str:
        """The trigger in one phrase, for listings: ``cron '*/5 * * * *' (UTC)``."""
        if self.kind == "cron":
            return f"cron {self.cron!r} ({self.timezone})"
        if self.kind == "dataset":
            return f"new version of dataset {self.dataset!r}"
        if self.kind == "alert":
            return f"alert {self.alert!r} fired"
        return "manual only"


@dataclass(frozen=True)
class NewFire:
    """A fire about to be recorded. ``key`` is unique per schedule (``cron:<ms>``,
    ``dataset:<version>``, ``alert:<event id>``, ``manual:<request id>``): recording the same
    key twice is what the store refuses, so no trigger is ever launched twice as two fires."""

    key: str
    trigger: str
    scheduled_ms: int
    params: dict[str, str]
    details: dict[str, str] = field(default_factory=dict)
    cursor: int | None = None
    """The schedule's new cursor, written in the same transaction (``None``: unchanged)."""


@dataclass(frozen=True)
class Fire:
    """One recorded firing of a schedule and how its launch went.

    ``status``: ``pending`` (recorded; launch not started or in progress), ``launched`` (the
    run exists and is executing), ``done`` (the launch returned a run id), ``failed`` (the
    launch raised, or it was abandoned after ``attempts`` tries). ``owner`` is the scheduler
    launching it and ``lease_until_ms`` how long that claim holds without a heartbeat.
    """

    id: int
    schedule_id: int
    schedule_name: str
    key: str
    trigger: str
    scheduled_ms: int
    params: dict[str, str]
    details: dict[str, str]
    status: str
    run_id: str | None
    error: str | None
    owner: str | None
    lease_until_ms: int | None
    attempts: int
    created_ms: int
    updated_ms: int

    @property
    def scheduled(self) -> dt.datetime:
        """``scheduled_ms`` as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.scheduled_ms / 1000, dt.UTC)

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED
