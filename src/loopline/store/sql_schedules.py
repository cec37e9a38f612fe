"""The SQL implementation of :class:`ScheduleStore` (SQLite and PostgreSQL): the only place with
schedule SQL."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, and_, delete, or_, select, update

from loopline.entities import NewEvent
from loopline.errors import AlreadyExists, NotFound
from loopline.pipelines.schedule_entities import (
    UNFINISHED,
    Fire,
    NewFire,
    NewSchedule,
    Schedule,
)
from loopline.pipelines.schedule_store import ScheduleStore
from loopline.store.database import Database, now_ms
from loopline.store.sql import insert_events
from loopline.store.tables import schedule_fires, schedules

__all__ = ["SqlScheduleStore"]

sc, sf = schedules.c, schedule_fires.c

_CURSOR_COLUMN = {"cron": "cursor_ms", "dataset": "cursor_version", "alert": "cursor_event_id"}
"""Which column holds the cursor of each trigger kind (manual schedules have none)."""


def _schedule(row: Any) -> Schedule:
    column = _CURSOR_COLUMN.get(row.kind)
    return Schedule(
        id=int(row.id),
        name=row.name,
        target=row.target,
        kind=row.kind,
        params=json.loads(row.params or "{}"),
        cron=row.cron,
        dataset=row.dataset,
        alert=row.alert,
        timezone=row.timezone,
        catch_up=row.catch_up,
        enabled=bool(row.enabled),
        cursor=getattr(row, column) if column else None,
        event_floor_id=row.event_floor_id,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        created_by=row.created_by,
    )


def _fire(row: Any) -> Fire:
    return Fire(
        id=int(row.id),
        schedule_id=int(row.schedule_id),
        schedule_name=row.name,
        key=row.fire_key,
        trigger=row.trigger,
        scheduled_ms=row.scheduled_ms,
        params=json.loads(row.params or "{}"),
        details=json.loads(row.details or "{}"),
        status=row.status,
        run_id=row.run_id,
        error=row.error,
        owner=row.owner,
        lease_until_ms=row.lease_until_ms,
        attempts=row.attempts,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
    )


_SELECT_FIRES = select(*schedule_fires.c, sc.name).join_from(
    schedule_fires, schedules, sc.id == sf.schedule_id
)


class SqlScheduleStore(ScheduleStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- schedules -------------------------------------------------------------------------
    @staticmethod
    def _get(conn: Connection, name: str, *, lock: bool = False) -> Any:
        query = select(schedules).where(sc.name == name)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"schedule {name!r} not found; try 'loopline schedule list'")
        return row

    def create_schedule(self, new: NewSchedule) -> Schedule:
        stamp = now_ms()
        values: dict[str, Any] = {
            "name": new.name,
            "target": new.target,
            "params": json.dumps(new.params, sort_keys=True),
            "kind": new.kind,
            "cron": new.cron,
            "dataset": new.dataset,
            "alert": new.alert,
            "timezone": new.timezone,
            "catch_up": new.catch_up,
            "enabled": True,
            "event_floor_id": new.event_floor_id,
            "created_by": new.created_by,
            "created_ms": stamp,
            "updated_ms": stamp,
        }
        if new.kind in _CURSOR_COLUMN:
            values[_CURSOR_COLUMN[new.kind]] = new.cursor
        with self.db.write() as conn:
            inserted = conn.execute(
                self.db.insert(schedules)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["name"])
            ).rowcount
            if not inserted:
                raise AlreadyExists(
                    f"schedule {new.name!r} already exists; remove it first "
                    f"('loopline schedule remove {new.name}') or pick another name"
                )
            return _schedule(self._get(conn, new.name))

    def get_schedule(self, name: str) -> Schedule:
        with self.db.read() as conn:
            return _schedule(self._get(conn, name))

    def list_schedules(self, *, enabled_only: bool = False) -> list[Schedule]:
        query = select(schedules).order_by(sc.name)
        if enabled_only:
            query = query.where(sc.enabled.is_(True))
        with self.db.read() as conn:
            return [_schedule(r) for r in conn.execute(query)]

    def delete_schedule(self, name: str) -> None:
        with self.db.write() as conn:
            row = self._get(conn, name, lock=True)
            conn.execute(delete(schedule_fires).where(sf.schedule_id == row.id))
            conn.execute(delete(schedules).where(sc.id == row.id))

    def set_enabled(
        self, name: str, enabled: bool, *, cursor: int | None, event_floor_id: int | None
    ) -> Schedule:
        with self.db.write() as conn:
            row = self._get(conn, name, lock=True)
            values: dict[str, Any] = {"enabled": enabled, "updated_ms": now_ms()}
            if enabled and not row.enabled:
                if row.kind in _CURSOR_COLUMN:
                    values[_CURSOR_COLUMN[row.kind]] = cursor
                values["event_floor_id"] = event_floor_id
            conn.execute(update(schedules).where(sc.id == row.id).values(**values))
            return _schedule(self._get(conn, name))

    def advance_cursor(self, schedule_id: int, cursor: int) -> None:
        with self.db.write() as conn:
            kind = conn.execute(select(sc.kind).where(sc.id == schedule_id)).scalar_one_or_none()
            if kind not in _CURSOR_COLUMN:
                return
            column = sc[_CURSOR_COLUMN[kind]]
            conn.execute(
                update(schedules)
                .where(sc.id == schedule_id, or_(column.is_(None), column < cursor))
                .values({column: cursor, "updated_ms": now_ms()})
            )

    # -- fires -----------------------------------------------------------------------------
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
        stamp = now_ms()
        with self.db.write() as conn:
            # The schedule row's lock orders racing schedulers on PostgreSQL (SQLite's single
            # writer already does): the second one reads the cursor the first one moved.
            row = conn.execute(
                select(schedules).where(sc.id == schedule_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"schedule #{schedule_id} was removed")
            column = _CURSOR_COLUMN.get(row.kind)
            current = getattr(row, column) if column else None
            behind = new.cursor is not None and current is not None and new.cursor <= current
            if after_cursor and behind:
                return None
            fire_id = conn.execute(
                self.db.insert(schedule_fires)
                .values(
                    schedule_id=schedule_id,
                    fire_key=new.key,
                    trigger=new.trigger,
                    scheduled_ms=new.scheduled_ms,
                    params=json.dumps(new.params, sort_keys=True),
                    details=json.dumps(new.details, sort_keys=True),
                    status="pending",
                    owner=owner,
                    lease_until_ms=lease_until_ms,
                    attempts=1 if owner else 0,
                    created_ms=stamp,
                    updated_ms=stamp,
                )
                .on_conflict_do_nothing(index_elements=["schedule_id", "fire_key"])
                .returning(sf.id)
            ).scalar_one_or_none()
            if fire_id is None:
                return None
            if column and new.cursor is not None and (current is None or new.cursor > current):
                conn.execute(
                    update(schedules)
                    .where(sc.id == schedule_id)
                    .values({column: new.cursor, "updated_ms": stamp})
                )
            insert_events(
                conn,
                [
                    NewEvent(
                        actor=actor,
                        action="schedule.fired",
                        object_kind="schedule",
                        object_id=row.name,
                        details={
                            "fire_id": int(fire_id),
                            "key": new.key,
                            "trigger": new.trigger,
                            "scheduled_ms": new.scheduled_ms,
                            **new.details,
                        },
                    )
                ],
            )
            return _fire(conn.execute(_SELECT_FIRES.where(sf.id == fire_id)).one())

    @staticmethod
    def _free(now: int) -> Any:
        return and_(
            sf.status.in_(UNFINISHED),
            or_(sf.owner.is_(None), sf.lease_until_ms.is_(None), sf.lease_until_ms < now),
        )

    def claimable_fires(self, now_ms: int, *, limit: int = 100) -> list[Fire]:
        query = _SELECT_FIRES.where(self._free(now_ms)).order_by(sf.id).limit(limit)
        with self.db.read() as conn:
            return [_fire(r) for r in conn.execute(query)]

    def claim_fire(self, fire_id: int, owner: str, now_ms: int, lease_until_ms: int) -> Fire | None:
        with self.db.write() as conn:
            # Compare-and-set: of schedulers racing for one expired fire, the first UPDATE wins
            # and the others' WHERE no longer matches (PostgreSQL re-checks it after the lock).
            taken = conn.execute(
                update(schedule_fires)
                .where(sf.id == fire_id, self._free(now_ms))
                .values(
                    owner=owner,
                    lease_until_ms=lease_until_ms,
                    attempts=sf.attempts + 1,
                    updated_ms=now_ms,
                )
            ).rowcount
            if not taken:
                return None
            return _fire(conn.execute(_SELECT_FIRES.where(sf.id == fire_id)).one())

    def renew_leases(self, fire_ids: list[int], owner: str, lease_until_ms: int) -> int:
        if not fire_ids:
            return 0
        with self.db.write() as conn:
            return int(
                conn.execute(
                    update(schedule_fires)
                    .where(sf.id.in_(fire_ids), sf.owner == owner, sf.status.in_(UNFINISHED))
                    .values(lease_until_ms=lease_until_ms)
                ).rowcount
            )

    def mark_launched(self, fire_id: int, owner: str, run_id: str) -> bool:
        with self.db.write() as conn:
            return bool(
                conn.execute(
                    update(schedule_fires)
                    .where(sf.id == fire_id, sf.owner == owner, sf.status.in_(UNFINISHED))
                    .values(status="launched", run_id=run_id, updated_ms=now_ms())
                ).rowcount
            )

    def finish_fire(
        self, fire_id: int, owner: str | None, status: str, *, run_id: str | None, error: str | None
    ) -> Fire | None:
        conditions = [sf.id == fire_id, sf.status.in_(UNFINISHED)]
        if owner is not None:
            conditions.append(sf.owner == owner)
        with self.db.write() as conn:
            changed = conn.execute(
                update(schedule_fires)
                .where(*conditions)
                .values(
                    status=status,
                    run_id=run_id,
                    error=error,
                    lease_until_ms=None,
                    updated_ms=now_ms(),
                )
            ).rowcount
            if not changed:
                return None
            return _fire(conn.execute(_SELECT_FIRES.where(sf.id == fire_id)).one())

    def find_fires(self, schedule_id: int, keys: list[str]) -> list[Fire]:
        found: list[Fire] = []
        with self.db.read() as conn:
            for start in range(0, len(keys), 500):
                query = _SELECT_FIRES.where(
                    sf.schedule_id == schedule_id, sf.fire_key.in_(keys[start : start + 500])
                )
                found.extend(_fire(r) for r in conn.execute(query))
        return found

    def get_fire(self, fire_id: int) -> Fire:
        with self.db.read() as conn:
            row = conn.execute(_SELECT_FIRES.where(sf.id == fire_id)).first()
        if row is None:
            raise NotFound(f"fire {fire_id} not found")
        return _fire(row)

    def list_fires(
        self, schedule_name: str | None = None, *, status: str | None = None, limit: int = 100
    ) -> list[Fire]:
        query = _SELECT_FIRES.order_by(sf.id.desc()).limit(limit)
        if status is not None:
            query = query.where(sf.status == status)
        with self.db.read() as conn:
            if schedule_name is not None:
                query = query.where(sf.schedule_id == self._get(conn, schedule_name).id)
            return [_fire(r) for r in conn.execute(query)]
