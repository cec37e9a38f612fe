"""The schedule store contract. Conventions as in :mod:`loopline.store.base`: ``get_*`` raises
NotFound, never returns None; ``create_*`` raises AlreadyExists; every method is one
transaction. Inputs arrive validated by :class:`~loopline.pipelines.scheduler.Scheduler`.

Restart safety rests on three methods, each one transaction:

- :meth:`ScheduleStore.record_fire` inserts the fire under its per-schedule unique key, moves
  the schedule's cursor and appends the ``schedule.fired`` event together: a key already
  recorded (by this scheduler earlier, or by another one) is refused, never doubled;
- :meth:`ScheduleStore.claim_fire` hands an unfinished fire whose lease has run out to exactly
  one scheduler (compare-and-set on owner and lease);
- :meth:`ScheduleStore.finish_fire` marks the outcome, only for the owner holding the claim.
"""

from __future__ import annotations

import abc

from loopline.pipelines.schedule_entities import Fire, NewFire, NewSchedule, Schedule

__all__ = ["ScheduleStore"]


class ScheduleStore(abc.ABC):
    # -- schedules -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_schedule(self, new: NewSchedule) -> Schedule:
        """AlreadyExists if a schedule has this name."""

    @abc.abstractmethod
    def get_schedule(self, name: str) -> Schedule:
        """NotFound if no schedule has this name."""

    @abc.abstractmethod
    def list_schedules(self, *, enabled_only: bool = False) -> list[Schedule]:
        """By name."""

    @abc.abstractmethod
    def delete_schedule(self, name: str) -> None:
        """The schedule and its fire history; NotFound if absent. Runs it launched stay."""

    @abc.abstractmethod
    def set_enabled(
        self, name: str, enabled: bool, *, cursor: int | None, event_floor_id: int | None
    ) -> Schedule:
        """Enable or disable; on enabling the cursor (and event floor) are reset to the values
        given, so what happened while disabled does not fire."""

    @abc.abstractmethod
    def advance_cursor(self, schedule_id: int, cursor: int) -> None:
        """Move the cursor forward to ``cursor`` (never backwards) without a fire: used when
        the trigger saw events that were not for this schedule."""

    # -- fires -----------------------------------------------------------------------------
    @abc.abstractmethod
    def record_fire(
        self,
        schedule_id: int,
        new: NewFire,
        *,
        owner: str | None,
        lease_until_ms: int | None,
        after_cursor: bool,
        actor: str,
    ) -> Fire | None:
        """Record ``new`` as ``pending`` and, in the same transaction, move the schedule's
        cursor to ``new.cursor`` (if given and greater) and append a ``schedule.fired`` event.

        Returns None, changing nothing, when the schedule already has a fire with this key,
        or when ``after_cursor`` is set and the cursor already reached ``new.cursor`` (another
        scheduler got further first). ``owner``/``lease_until_ms`` claim the launch at once
        (``attempts`` 1); ``owner=None`` queues it for whichever scheduler claims it first.
        NotFound if the schedule was removed meanwhile."""

    @abc.abstractmethod
    def claimable_fires(self, now_ms: int, *, limit: int = 100) -> list[Fire]:
        """Unfinished fires (``pending``/``launched``) nobody holds: no owner, or a lease that
        ended before ``now_ms``. Oldest first."""

    @abc.abstractmethod
    def claim_fire(self, fire_id: int, owner: str, now_ms: int, lease_until_ms: int) -> Fire | None:
        """Take an unfinished fire whose lease is over (or that has no owner) for ``owner`` and
        count an attempt; None if it finished or another scheduler holds it."""

    @abc.abstractmethod
    def renew_leases(self, fire_ids: list[int], owner: str, lease_until_ms: int) -> int:
        """Extend the lease of those of ``fire_ids`` that ``owner`` still holds; returns how
        many."""

    @abc.abstractmethod
    def mark_launched(self, fire_id: int, owner: str, run_id: str) -> bool:
        """``pending`` -> ``launched`` with the run id, if ``owner`` still holds the fire."""

    @abc.abstractmethod
    def finish_fire(
        self, fire_id: int, owner: str | None, status: str, *, run_id: str | None, error: str | None
    ) -> Fire | None:
        """Set a final status (``done``/``failed``), run id and error, and release the lease.
        With an ``owner``, only if that owner still holds it (None otherwise: another scheduler
        took it over after the lease ran out)."""

    @abc.abstractmethod
    def find_fires(self, schedule_id: int, keys: list[str]) -> list[Fire]:
        """The schedule's fires with any of ``keys`` (absent keys are simply missing)."""

    @abc.abstractmethod
    def get_fire(self, fire_id: int) -> Fire:
        """NotFound if no fire has this id."""

    @abc.abstractmethod
    def list_fires(
        self, schedule_name: str | None = None, *, status: str | None = None, limit: int = 100
    ) -> list[Fire]:
        """Newest first; NotFound for an unknown schedule name."""
