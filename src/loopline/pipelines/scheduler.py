"""Schedules and triggers: launch a target when a cron time comes, a dataset gets a new version,
an alert fires, or someone asks.

How a trigger becomes a run, and why it survives a killed scheduler:

1. **Record.** A tick works out what is due (:mod:`~loopline.pipelines.schedule_triggers`) and
   records each fire in one transaction: the row under its unique key (``cron:<ms>``,
   ``dataset:<version>``, ``alert:<event id>``, ``manual:<request id>``), the schedule's
   advanced cursor and the ``schedule.fired`` event. A key already recorded, by an earlier
   scheduler or one racing this one, is refused: a trigger is *recorded exactly once*.
2. **Launch.** The recording scheduler holds a lease on the fire (renewed by a heartbeat
   thread while the launch runs) and calls :func:`launch`; the outcome is marked ``done`` or
   ``failed`` with the run id, and ``schedule.launched`` / ``schedule.failed`` logged.
3. **Recover.** Every tick first claims unfinished fires whose lease ran out (their scheduler
   was killed) and launches them again. So each recorded fire is *launched at least once*; it
   is launched twice only when a scheduler died after its launch had started but before it was
   marked, and it is abandoned (``failed``) after ``max_attempts`` claims, so a target that
   kills its scheduler cannot loop forever.

Launches run one after another in the scheduler process: a schedule is a trigger, not a worker
pool, and a pipeline's own executor parallelises its steps. The schedule clock (what is due)
can be injected, for tests and examples; leases always use the wall clock.
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopline.entities import Event
from loopline.errors import ConfigError, InvalidInput, LooplineError, NotFound
from loopline.pipelines.schedule_entities import (
    CATCH_UP_POLICIES,
    Fire,
    NewFire,
    NewSchedule,
    Schedule,
)
from loopline.pipelines.schedule_store import ScheduleStore
from loopline.pipelines.schedule_triggers import (
    ALERT_ACTION,
    EVENT_LOOKBACK,
    alert_fires,
    alert_key,
    alert_matches,
    check_cron,
    check_timezone,
    cron_fires,
    dataset_fires,
    to_ms,
)
from loopline.pipelines.targets import import_target

if TYPE_CHECKING:
    from loopline.workspace import Workspace

__all__ = ["Scheduler", "fire_tags", "launch", "resolve_target"]

log = logging.getLogger("loopline.scheduler")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def resolve_target(target: str) -> Any:
    """Import ``module:attribute`` (see :func:`~loopline.pipelines.targets.import_target`),
    after checking its shape, so a schedule with a malformed target is refused when added."""
    if not _TARGET.match(target):
        raise InvalidInput(f"target {target!r} must look like module.path:function")
    return import_target(target)


def _is_pipeline(obj: Any) -> bool:
    from loopline.pipelines import Pipeline

    return isinstance(obj, Pipeline)


def fire_tags(schedule: Schedule, fire: Fire) -> dict[str, str]:
    """The tags a launched run carries, so a run names the trigger that started it."""
    tags = {
        "loopline.trigger": fire.trigger,
        "loopline.schedule": schedule.name,
        "loopline.fire_id": str(fire.id),
        "loopline.fire_key": fire.key,
    }
    for key, value in fire.details.items():
        tags[f"loopline.trigger.{key}"] = str(value)
    return tags


def launch(
    workspace: Workspace,
    schedule: Schedule,
    fire: Fire,
    *,
    on_run: Callable[[str], None] | None = None,
) -> str:
    """Start what ``fire`` asks for and return the run id; the one place a schedule becomes a
    run. A pipeline (``@ll.pipeline``) goes through the pipeline runner, which waits for it and
    raises :class:`~loopline.pipelines.results.PipelineFailed` here if it failed; any other
    callable is called with the fire's params as keyword arguments inside a tracked run, so
    ``ll.log_metric`` in it lands on that run. Either run is tagged with the trigger
    (:func:`fire_tags`). ``on_run`` hears the run id as soon as it is known (the scheduler
    records it on the fire). Raises what the target raises."""
    target = resolve_target(schedule.target)
    tags = fire_tags(schedule, fire)
    from loopline import api

    if api.current_workspace() is not workspace:  # runs go to the scheduler's workspace
        api.use_workspace(workspace)
    if _is_pipeline(target):
        from loopline.pipelines.results import PipelineRun
        from loopline.pipelines.runner import run_target

        run_id = run_target(schedule.target, dict(fire.params), tags=tags)
        if on_run is not None:
            on_run(run_id)
        PipelineRun.load(run_id, workspace).raise_for_status()
        return run_id
    if not callable(target):
        raise InvalidInput(f"target {schedule.target!r} is neither a pipeline nor callable")
    from loopline.tracking import fluent

    with fluent.start_run(run_name=f"{schedule.name}-{fire.id}", tags=tags) as run:
        if on_run is not None:
            on_run(run.run_id)
        target(**fire.params)
    return run.run_id


class _Heartbeat:
    """Renews the lease on the fire being launched, from a thread, so a launch longer than the
    lease is not taken over by another scheduler while this one is alive."""

    def __init__(self, renew: Callable[[], object], every: float) -> None:
        self._renew, self._every = renew, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="schedule-lease", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._renew()
            except Exception:  # a blip in the database: the next beat tries again
                log.warning("could not renew the lease of the fire being launched", exc_info=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Scheduler:
    """Registers schedules and, from :meth:`tick` or :meth:`run_forever`, fires them.

    Several schedulers may run on one metadata store: each trigger is recorded once, and each
    unfinished fire is held by one scheduler at a time (see the module docstring).
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        store: ScheduleStore | None = None,
        clock: Callable[[], dt.datetime] = _utc_now,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        before_launch: Callable[[Fire], None] | None = None,
        on_fire: Callable[[Fire], None] | None = None,
    ) -> None:
        if workspace.remote:
            raise ConfigError(
                "schedules are not served over HTTP yet; run the scheduler against the shared "
                "metadata store (LOOPLINE_STORE_URI) instead of LOOPLINE_TRACKING_URI"
            )
        if store is None:
            from loopline.store.sql_schedules import SqlScheduleStore

            store = SqlScheduleStore(workspace.database)
        self.workspace = workspace
        self.store = store
        self.clock = clock
        self.lease_ms = int(lease_seconds * 1000)
        self.max_attempts = max_attempts
        self.before_launch = before_launch
        self.on_fire = on_fire
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()

    # -- registering ---------------------------------------------------------------------------
    def add_schedule(
        self,
        name: str,
        target: str,
        *,
        cron: str | None = None,
        dataset: str | None = None,
        alert: str | None = None,
        params: dict[str, str] | None = None,
        timezone: str = "UTC",
        catch_up: str = "latest",
    ) -> Schedule:
        """Register ``target`` (``module:function`` or a pipeline) to launch with ``params``
        on at most one trigger: ``cron``, a new version of ``dataset``, or ``alert`` firing;
        none means manual only. Triggers count from now: a cron slot, dataset version or
        alert that already happened does not fire. ``catch_up`` says what a tick does when
        several are due at once (after downtime): ``"latest"`` fires once, for the most
        recent; ``"all"`` fires each."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput(
                f"schedule name {name!r} is invalid: use letters, digits, '.', '_' or '-'"
            )
        if not _TARGET.match(target or ""):
            raise InvalidInput(f"target {target!r} must look like module.path:function")
        chosen = [k for k, v in (("cron", cron), ("dataset", dataset), ("alert", alert)) if v]
        if len(chosen) > 1:
            raise InvalidInput(f"give one trigger per schedule, not {' and '.join(chosen)}")
        if catch_up not in CATCH_UP_POLICIES:
            raise InvalidInput(f"catch_up must be one of {', '.join(CATCH_UP_POLICIES)}")
        check_timezone(timezone)
        if cron:
            check_cron(cron)
        clean = {str(k): str(v) for k, v in (params or {}).items()}
        kind = chosen[0] if chosen else "manual"
        cursor, floor = self._start_cursor(kind, dataset)
        schedule = self.store.create_schedule(
            NewSchedule(
                name=name,
                target=target,
                kind=kind,
                params=clean,
                cron=cron,
                dataset=dataset,
                alert=alert,
                timezone=timezone,
                catch_up=catch_up,
                created_by=self.workspace.settings.actor,
                cursor=cursor,
                event_floor_id=floor,
            )
        )
        self._event("schedule.created", schedule.name, {"target": target, "trigger": kind})
        return schedule

    def _start_cursor(self, kind: str, dataset: str | None) -> tuple[int | None, int | None]:
        """Where a new (or re-enabled) trigger starts: now, the latest version, the last
        event. Returns ``(cursor, event floor)``."""
        if kind == "cron":
            return to_ms(self.clock()), None
        if kind == "dataset":
            return self._latest_version(dataset or "") or 0, None
        if kind == "alert":
            newest = self.workspace.events.list(newest_first=True, limit=1)
            last = newest[0].id if newest else 0
            return last, last
        return None, None

    def _latest_version(self, dataset: str) -> int | None:
        try:
            return self.workspace.data.get_dataset(dataset).latest_version
        except NotFound:
            return None

    def get(self, name: str) -> Schedule:
        return self.store.get_schedule(name)

    def list(self) -> builtins.list[Schedule]:
        return self.store.list_schedules()

    def remove(self, name: str) -> None:
        """Delete the schedule and its fire history; the runs it launched stay."""
        self.store.delete_schedule(name)
        self._event("schedule.removed", name, {})

    def enable(self, name: str) -> Schedule:
        """Resume firing from now on: what came while disabled does not fire."""
        current = self.store.get_schedule(name)
        cursor, floor = self._start_cursor(current.kind, current.dataset)
        schedule = self.store.set_enabled(name, True, cursor=cursor, event_floor_id=floor)
        self._event("schedule.enabled", name, {})
        return schedule

    def disable(self, name: str) -> Schedule:
        schedule = self.store.set_enabled(name, False, cursor=None, event_floor_id=None)
        self._event("schedule.disabled", name, {})
        return schedule

    def history(self, name: str, *, limit: int = 50) -> builtins.list[Fire]:
        """The schedule's fires, newest first."""
        return self.store.list_fires(name, limit=limit)

    # -- firing --------------------------------------------------------------------------------
    def trigger(
        self,
        name: str,
        params: dict[str, str] | None = None,
        *,
        request_id: str | None = None,
        wait: bool = True,
    ) -> Fire:
        """Fire ``name`` now with ``params`` over the schedule's own. A caller that may retry
        (an API client) passes ``request_id``: the same id is recorded once and its existing
        fire returned. ``wait=False`` only records the fire, for a running scheduler to launch
        on its next tick; by default it is launched here and the finished fire returned."""
        schedule = self.store.get_schedule(name)
        request = request_id or uuid.uuid4().hex
        new = NewFire(
            key=f"manual:{request}",
            trigger="manual",
            scheduled_ms=to_ms(self.clock()),
            params={**schedule.params, **{str(k): str(v) for k, v in (params or {}).items()}},
            details={"request_id": request},
        )
        fire = self._record(schedule, new, after_cursor=False, claim=wait)
        if fire is None:
            return self.store.find_fires(schedule.id, [new.key])[0]
        return self._launch(fire) if wait else fire

    def tick(self, now: dt.datetime | None = None) -> builtins.list[Fire]:
        """Evaluate every schedule once at ``now`` (default: the clock): re-launch fires a
        dead scheduler left unfinished, record what is due, launch it. Returns the fires this
        tick handled, in their final state."""
        moment = now if now is not None else self.clock()
        to_ms(moment)  # aware datetimes only
        handled = self._recover()
        recorded: builtins.list[Fire] = []
        for schedule in self.store.list_schedules(enabled_only=True):
            if schedule.kind == "manual":
                continue
            try:
                due = self._due(schedule, moment)
            except LooplineError as exc:  # one broken schedule must not stop the others
                log.error("schedule %r: %s", schedule.name, exc)
                continue
            # Alert fires may be for events below the cursor (committed late); their keys
            # alone keep them single.
            after_cursor = schedule.kind != "alert"
            for new in due:
                fire = self._record(schedule, new, after_cursor=after_cursor, claim=True)
                if fire is not None:
                    recorded.append(fire)
        for i, fire in enumerate(recorded):
            if self._stop.is_set():  # stopping: hand the rest to the next scheduler at once
                self.store.renew_leases([f.id for f in recorded[i:]], self.owner, 0)
                break
            handled.append(self._launch(fire))
        return handled

    def _due(self, schedule: Schedule, now: dt.datetime) -> builtins.list[NewFire]:
        if schedule.kind == "cron":
            return cron_fires(schedule, now)
        if schedule.kind == "dataset":
            name = schedule.dataset or ""
            return dataset_fires(
                schedule,
                now,
                self._latest_version(name),
                lambda: [v.version for v in self.workspace.data.versions(name)],
            )
        return self._alert_due(schedule, now)

    def _alert_due(self, schedule: Schedule, now: dt.datetime) -> builtins.list[NewFire]:
        """Read ``alert.fired`` events from a window below the cursor (see EVENT_LOOKBACK),
        find which of the matching ones are already recorded, and let ``alert_fires`` pick."""
        cursor = schedule.cursor or 0
        start = max(schedule.event_floor_id or 0, cursor - EVENT_LOOKBACK)
        events: builtins.list[Event] = []
        while True:
            page = self.workspace.events.list(action=ALERT_ACTION, after_id=start, limit=1000)
            events.extend(page)
            if len(page) < 1000:
                break
            start = page[-1].id
        keys = [alert_key(e) for e in events if alert_matches(e, schedule.alert)]
        recorded = {f.key for f in self.store.find_fires(schedule.id, keys)} if keys else set()
        fires = alert_fires(schedule, now, events, recorded)
        newest = max((e.id for e in events), default=0)
        if not fires and newest > cursor:
            self.store.advance_cursor(schedule.id, newest)
        return fires

    def _record(
        self, schedule: Schedule, new: NewFire, *, after_cursor: bool, claim: bool
    ) -> Fire | None:
        try:
            return self.store.record_fire(
                schedule.id,
                new,
                owner=self.owner if claim else None,
                lease_until_ms=self._lease_end() if claim else None,
                after_cursor=after_cursor,
                actor=self.workspace.settings.actor,
            )
        except NotFound:  # removed since this tick listed it
            return None

    def _lease_end(self) -> int:
        return time.time_ns() // 1_000_000 + self.lease_ms

    def _recover(self) -> builtins.list[Fire]:
        """Claim and launch fires a dead scheduler left unfinished (and queued manual ones)."""
        handled: builtins.list[Fire] = []
        for orphan in self.store.claimable_fires(time.time_ns() // 1_000_000):
            if self._stop.is_set():
                break
            now_ms = time.time_ns() // 1_000_000
            fire = self.store.claim_fire(orphan.id, self.owner, now_ms, now_ms + self.lease_ms)
            if fire is None:
                continue  # another scheduler took it first
            if fire.run_id:  # the run the dead scheduler started died with it
                self._end_orphan_run(fire.run_id)
            if fire.attempts > self.max_attempts:
                error = f"abandoned after {self.max_attempts} attempts: each launch was cut short"
                handled.append(self._finish(fire, "failed", fire.run_id, error))
                continue
            log.info(
                "re-launching fire %s of %r (attempt %s)",
                fire.id,
                fire.schedule_name,
                fire.attempts,
            )
            handled.append(self._launch(fire))
        return handled

    def _end_orphan_run(self, run_id: str) -> None:
        try:
            tracking = self.workspace.tracking
            if tracking.get_run(run_id).info.status == "RUNNING":
                tracking.end_run(run_id, "KILLED")
        except LooplineError:
            log.warning("could not end orphaned run %s", run_id, exc_info=True)

    def _launch(self, fire: Fire) -> Fire:
        try:
            schedule = self.store.get_schedule(fire.schedule_name)
        except NotFound:
            return fire  # removed meanwhile; its fires went with it
        run_id: str | None = None

        def started(new_run_id: str) -> None:
            nonlocal run_id
            run_id = new_run_id
            self.store.mark_launched(fire.id, self.owner, new_run_id)

        renew = lambda: self.store.renew_leases([fire.id], self.owner, self._lease_end())  # noqa: E731
        with _Heartbeat(renew, max(self.lease_ms / 3000, 0.05)):
            try:
                if self.before_launch is not None:
                    self.before_launch(fire)
                run_id = launch(self.workspace, schedule, fire, on_run=started)
            except Exception as exc:
                log.error("fire %s of %r failed: %s", fire.id, schedule.name, exc)
                return self._finish(fire, "failed", run_id, f"{type(exc).__name__}: {exc}")
        return self._finish(fire, "done", run_id, None)

    def _finish(self, fire: Fire, status: str, run_id: str | None, error: str | None) -> Fire:
        finished = self.store.finish_fire(fire.id, self.owner, status, run_id=run_id, error=error)
        if finished is None:  # lost the lease (e.g. paused past it): the new holder reports
            log.warning("fire %s was taken over by another scheduler", fire.id)
            return self.store.get_fire(fire.id)
        action = "schedule.launched" if status == "done" else "schedule.failed"
        details: dict[str, Any] = {"fire_id": fire.id, "key": fire.key, "run_id": run_id}
        if error:
            details["error"] = error
        self._event(action, fire.schedule_name, details)
        if self.on_fire is not None:
            self.on_fire(finished)
        return finished

    def _event(self, action: str, name: str, details: dict[str, Any]) -> None:
        self.workspace.events.record(None, action, "schedule", name, details)

    # -- the loop ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run_forever` to return after the launch in progress."""
        self._stop.set()

    def run_forever(
        self, poll_seconds: float = 5.0, stop_event: threading.Event | None = None
    ) -> None:
        """Tick every ``poll_seconds`` until SIGTERM/SIGINT, :meth:`stop` or ``stop_event``.
        A signal lets the launch in progress finish, hands fires recorded but not launched to
        the next scheduler and returns; a second SIGINT interrupts the launch."""
        if stop_event is not None:
            self._stop = stop_event
        stop = self._stop
        previous: dict[int, Any] = {}

        def on_signal(signum: int, frame: object) -> None:
            if stop.is_set() and signum == signal.SIGINT:
                raise KeyboardInterrupt
            log.info("stopping after the launch in progress (signal %s)", signum)
            stop.set()

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, on_signal)
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except LooplineError as exc:  # e.g. the database restarting: try again later
                    log.error("tick failed: %s", exc)
                stop.wait(poll_seconds)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
