"""What is due: each trigger kind turned into the fires a tick should record.

Pure functions of a :class:`Schedule`, the time and what the trigger watches (dataset versions,
the event log), so the rules are readable and testable in one place. Cron arithmetic is
croniter's; nothing here parses a cron expression by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from loopline.entities import Event
from loopline.errors import InvalidInput
from loopline.pipelines.schedule_entities import NewFire, Schedule

__all__ = [
    "ALERT_ACTION",
    "EVENT_LOOKBACK",
    "MAX_CATCH_UP",
    "alert_fires",
    "alert_key",
    "alert_matches",
    "check_cron",
    "check_timezone",
    "cron_fires",
    "dataset_fires",
    "from_ms",
    "to_ms",
]

ALERT_ACTION = "alert.fired"
"""The event action an alert trigger watches (the monitoring service appends these)."""
MAX_CATCH_UP = 100
"""At most this many missed cron slots are recorded per tick under ``catch_up="all"``; the
cursor moves with each, so the rest follow on the next ticks, none skipped."""
EVENT_LOOKBACK = 1000
"""An alert trigger re-reads this many event ids below its cursor: on PostgreSQL ids are handed
out before commit, so an event can become visible after a higher id was already seen. Fire
keys tell which of the re-read events were already recorded."""


def to_ms(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        raise InvalidInput(f"time {moment.isoformat()} must be timezone-aware, e.g. tzinfo=UTC")
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown timezone {name!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None


def check_cron(expression: str) -> str:
    if not isinstance(expression, str) or not croniter.is_valid(expression):
        raise InvalidInput(
            f"invalid cron expression {expression!r}; use five fields, minute hour day-of-month "
            "month day-of-week, e.g. '*/5 * * * *' or '0 3 * * MON'"
        )
    return expression


def cron_fires(schedule: Schedule, now: dt.datetime) -> list[NewFire]:
    """Slots after the cursor up to ``now``: the most recent one (``latest``) or each, oldest
    first (``all``, at most MAX_CATCH_UP). Evaluated in the schedule's timezone, so '0 9 * * *'
    in Europe/Berlin is 09:00 local time on both sides of a DST change."""
    zone = check_timezone(schedule.timezone)
    local_now = now.astimezone(zone)
    cursor = schedule.cursor if schedule.cursor is not None else to_ms(now)
    slots: list[dt.datetime] = []
    if schedule.catch_up == "all":
        it = croniter(schedule.cron, from_ms(cursor).astimezone(zone))
        while len(slots) < MAX_CATCH_UP:
            slot = it.get_next(dt.datetime)
            if slot > local_now:
                break
            slots.append(slot)
    else:
        # get_prev excludes its start, so a tick exactly on a slot looks one step further.
        previous = croniter(schedule.cron, local_now).get_prev(dt.datetime)
        following = croniter(schedule.cron, previous).get_next(dt.datetime)
        latest = following if following <= local_now else previous
        if to_ms(latest) > cursor:
            slots.append(latest)
    return [
        NewFire(
            key=f"cron:{to_ms(slot)}",
            trigger="cron",
            scheduled_ms=to_ms(slot),
            params=dict(schedule.params),
            details={"scheduled": slot.isoformat()},
            cursor=to_ms(slot),
        )
        for slot in slots
        if to_ms(slot) > cursor
    ]


def dataset_fires(
    schedule: Schedule,
    now: dt.datetime,
    latest_version: int | None,
    versions: Callable[[], list[int]],
) -> list[NewFire]:
    """New versions of the watched dataset since the cursor: the newest (``latest``) or each,
    oldest first (``all``). ``versions`` lists every version number and is called only when
    more than one is new under ``all``."""
    cursor = schedule.cursor or 0
    if latest_version is None or latest_version <= cursor:
        return []
    if schedule.catch_up == "all" and latest_version > cursor + 1:
        new = sorted(v for v in versions() if v > cursor)
    else:
        new = [latest_version]
    return [
        NewFire(
            key=f"dataset:{version}",
            trigger="dataset",
            scheduled_ms=to_ms(now),
            params=dict(schedule.params),
            details={"dataset": f"{schedule.dataset}@{version}"},
            cursor=version,
        )
        for version in new
    ]


def alert_matches(event: Event, alert: str | None) -> bool:
    """An ``alert.fired`` event is for ``alert`` when its object is ``alert:<name>`` or its
    details name it (``"alert"`` or ``"name"``)."""
    if event.object_kind == "alert" and event.object_id == alert:
        return True
    return alert is not None and alert in (event.details.get("alert"), event.details.get("name"))


def alert_key(event: Event) -> str:
    return f"alert:{event.id}"


def alert_fires(
    schedule: Schedule, now: dt.datetime, events: Iterable[Event], recorded: set[str]
) -> list[NewFire]:
    """Fires for matching ``alert.fired`` events among ``events`` (read from the lookback
    window below the cursor onwards) whose keys are not in ``recorded``, above the schedule's
    event floor. ``all``: each, oldest first. ``latest``: the newest, and only if it is newer
    than every recorded one (an older alert that arrives late is superseded, as under latest it
    would have been had it arrived in time). Every fire carries the highest event id read as the
    new cursor."""
    read = sorted(events, key=lambda e: e.id)
    if not read:
        return []
    seen = read[-1].id
    floor = schedule.event_floor_id or 0
    matching = [e for e in read if e.id > floor and alert_matches(e, schedule.alert)]
    new = [e for e in matching if alert_key(e) not in recorded]
    if schedule.catch_up != "all":
        newest_recorded = max((e.id for e in matching if alert_key(e) in recorded), default=0)
        new = [e for e in new if e.id > newest_recorded][-1:]
    return [
        NewFire(
            key=alert_key(event),
            trigger="alert",
            scheduled_ms=to_ms(now),
            params=dict(schedule.params),
            details={"alert": str(schedule.alert), "event_id": str(event.id)},
            cursor=seen,
        )
        for event in new
    ]
