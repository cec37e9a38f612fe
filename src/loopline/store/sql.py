"""The SQL implementation of :class:`MetadataStore`, for SQLite and PostgreSQL alike.

Dialect differences live in ``engine.py`` (connection setup) and in the few upsert helpers
below; queries are SQLAlchemy Core with bound parameters only.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal

from sqlalchemy import and_, func, literal, or_, select

from loopline.entities import (
    BlobRef,
    Event,
    LineageEdge,
    NewEvent,
    Ref,
    check_id,
    check_kind,
)
from loopline.errors import InvalidInput, NotFound
from loopline.store import migrate
from loopline.store.base import MetadataStore
from loopline.store.database import Database, now_ms
from loopline.store.tables import blob_refs, events, lineage, workspace_meta

__all__ = [
    "SqlStore",
    "add_blob_refs",
    "event_row",
    "insert_events",
    "insert_links",
    "insert_values",
    "record_files",
    "under_prefix",
]

_CHUNK = 500
MAX_PAGE = 10_000


def event_row(event: NewEvent, default_time: int) -> dict[str, Any]:
    """The events-table row of ``event``, validated; shared by every store that appends events
    inside its own transactions."""
    check_kind(event.object_kind, "object_kind")
    check_id(event.object_id, "object_id")
    if not event.action or len(event.action) > 128:
        raise InvalidInput("event action must be 1-128 characters")
    if not event.actor or len(event.actor) > 256:
        raise InvalidInput("event actor must be 1-256 characters")
    try:
        details = json.dumps(event.details, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"event details must be JSON-serialisable: {exc}") from exc
    return {
        "time_ms": event.time_ms or default_time,
        "actor": event.actor,
        "action": event.action,
        "object_kind": event.object_kind,
        "object_id": event.object_id,
        "details": details,
    }


_EVENT_COLUMNS = ("time_ms", "actor", "action", "object_kind", "object_id", "details")
_MAX_BOUND = 30_000
"""Bound values per statement: under SQLite's limit (32,766 since 3.32) and PostgreSQL's."""


def insert_values(
    conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], suffix: str = ""
) -> None:
    """INSERT many rows as multi-row ``VALUES`` statements, straight to the driver.

    One statement per few thousand rows rather than one step per row: SQLite's driver gives up
    and re-takes the GIL around every step, and while another thread is busy in Python (Optuna
    sampling the next trial) each re-take waits for that thread's switch interval, so a
    background writer inserting row by row crawled. It also skips SQLAlchemy's per-row
    parameter building. ``table``, ``columns`` and ``suffix`` are the stores' constants, never
    input."""
    if not rows:
        return
    marker = "?" if conn.dialect.name == "sqlite" else "%s"
    one = f"({', '.join([marker] * len(columns))})"
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    per = max(1, _MAX_BOUND // len(columns))
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        args = [value for row in chunk for value in row]
        conn.exec_driver_sql(head + ", ".join([one] * len(chunk)) + suffix, tuple(args))


def insert_events(conn: Any, new_events: Iterable[NewEvent]) -> int:
    """Append events on ``conn``, inside the caller's transaction."""
    total = 0
    iterator = iter(new_events)
    while chunk := list(itertools.islice(iterator, _CHUNK)):
        stamp = now_ms()
        rows = [[row[c] for c in _EVENT_COLUMNS] for row in (event_row(e, stamp) for e in chunk)]
        insert_values(conn, "events", _EVENT_COLUMNS, rows)
        total += len(chunk)
    return total


_LINK_COLUMNS = ("source_kind", "source_id", "target_kind", "target_id", "relation", "created_ms")


def _link_row(source: Ref, target: Ref, relation: str, stamp: int) -> tuple[Any, ...]:
    """A lineage row in ``_LINK_COLUMNS`` order, validated: one place for both ways in."""
    check_kind(relation, "relation", example="'trained_on', 'produced'")
    if source == target:
        raise InvalidInput(f"an object cannot be linked to itself ({source})")
    return (source.kind, source.id, target.kind, target.id, relation, stamp)


def insert_links(conn: Any, edges: Sequence[tuple[Ref, Ref, str]]) -> None:
    """Record lineage edges on ``conn``, inside the caller's transaction; an edge already
    recorded is kept as it was."""
    stamp = now_ms()
    rows = [_link_row(source, target, relation, stamp) for source, target, relation in edges]
    insert_values(conn, "lineage", _LINK_COLUMNS, rows, " ON CONFLICT DO NOTHING")


def add_blob_refs(
    db: Database,
    conn: Any,
    owner_kind: str,
    owner_id: str,
    digests: Iterable[str],
    kind: str = "file",
    stamp: int | None = None,
) -> None:
    """Reference blobs from an owner inside the caller's transaction (kept from garbage
    collection until the owner lets go)."""
    stamp = stamp or now_ms()
    rows = [
        {
            "digest": d,
            "owner_kind": owner_kind,
            "owner_id": owner_id,
            "kind": kind,
            "created_ms": stamp,
        }
        for d in dict.fromkeys(digests)
    ]
    for start in range(0, len(rows), _CHUNK):
        conn.execute(db.insert(blob_refs).on_conflict_do_nothing(), rows[start : start + _CHUNK])


def record_files(
    db: Database,
    conn: Any,
    table: Any,
    owner: tuple[str, str],
    owner_kind: str,
    files: Sequence[Any],
) -> None:
    """Upsert file rows ``(owner column, path) -> digest, size`` of ``table`` (a later file at
    the same path replaces the earlier one) and reference their blobs, in the caller's
    transaction. Run artifacts and logged-model files are both stored this way."""
    column, owner_id = owner
    stamp = now_ms()
    stmt = db.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[column, "path"],
        set_={
            "digest": stmt.excluded.digest,
            "size": stmt.excluded.size,
            "created_ms": stmt.excluded.created_ms,
        },
    )
    for start in range(0, len(files), _CHUNK):
        chunk = files[start : start + _CHUNK]
        conn.execute(
            stmt,
            [
                {
                    column: owner_id,
                    "path": f.path,
                    "digest": f.digest,
                    "size": f.size,
                    "created_ms": stamp,
                }
                for f in chunk
            ],
        )
        add_blob_refs(db, conn, owner_kind, owner_id, (f.digest for f in chunk), stamp=stamp)


def under_prefix(column: Any, prefix: str) -> Any:
    """``column`` is the path ``prefix`` or lies below it: a literal match, LIKE's wildcards in
    user-supplied paths escaped."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(column == prefix, column.like(f"{escaped}/%", escape="\\"))


class SqlStore(MetadataStore):
    """Metadata in SQLite (embedded default) or PostgreSQL (teams)."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"multi_process", "transactions"})

    def __init__(self, db: str | Database, *, migrate_on_open: bool = True) -> None:
        self.db = db if isinstance(db, Database) else Database(db, migrate_on_open=migrate_on_open)
        self.uri = self.db.uri

    @property
    def dialect(self) -> str:
        return self.db.dialect

    # -- schema ----------------------------------------------------------------------------
    def schema_revision(self) -> str | None:
        return self.db.schema_revision()

    def latest_revision(self) -> str:
        return migrate.head_revision()

    def upgrade(self) -> str:
        return self.db.upgrade()

    def close(self) -> None:
        self.db.close()

    # -- helpers ---------------------------------------------------------------------------
    def _insert(self, table: Any) -> Any:
        return self.db.insert(table)

    def _read(self) -> Any:
        return self.db.read()

    def _write(self) -> Any:
        return self.db.write()

    # -- workspace facts -------------------------------------------------------------------
    def get_meta(self, key: str) -> str:
        with self._read() as conn:
            value = conn.execute(
                select(workspace_meta.c.value).where(workspace_meta.c.key == key)
            ).scalar_one_or_none()
        if value is None:
            raise NotFound(f"workspace setting {key!r} is not set")
        return value

    def set_meta(self, key: str, value: str, *, overwrite: bool = True) -> str:
        if not key or len(key) > 128:
            raise InvalidInput("workspace setting key must be 1-128 characters")
        stmt = self._insert(workspace_meta).values(key=key, value=value)
        if overwrite:
            stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=["key"])
        with self._write() as conn:
            conn.execute(stmt)
            return str(
                conn.execute(
                    select(workspace_meta.c.value).where(workspace_meta.c.key == key)
                ).scalar_one()
            )

    # -- events ----------------------------------------------------------------------------
    def append_events(self, new_events: Iterable[NewEvent]) -> int:
        with self._write() as conn:
            return insert_events(conn, new_events)

    @staticmethod
    def _event_filters(**filters: Any) -> list[Any]:
        return [events.c[name] == value for name, value in filters.items() if value is not None]

    def list_events(
        self,
        *,
        object_kind: str | None = None,
        object_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[Event]:
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}")
        conditions = self._event_filters(
            object_kind=object_kind, object_id=object_id, action=action, actor=actor
        )
        if after_id:
            conditions.append(events.c.id < after_id if newest_first else events.c.id > after_id)
        order = events.c.id.desc() if newest_first else events.c.id.asc()
        query = select(events).where(*conditions).order_by(order).limit(min(limit, MAX_PAGE))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            Event(
                id=row.id,
                time_ms=row.time_ms,
                actor=row.actor,
                action=row.action,
                object_kind=row.object_kind,
                object_id=row.object_id,
                details=json.loads(row.details),
            )
            for row in rows
        ]

    def count_events(
        self,
        *,
        object_kind: str | None = None,
        object_id: str | None = None,
        action: str | None = None,
    ) -> int:
        conditions = self._event_filters(
            object_kind=object_kind, object_id=object_id, action=action
        )
        with self._read() as conn:
            return int(
                conn.execute(select(func.count()).select_from(events).where(*conditions)).scalar()
                or 0
            )

    # -- lineage ---------------------------------------------------------------------------
    def add_link(self, source: Ref, target: Ref, relation: str) -> bool:
        row = _link_row(source, target, relation, now_ms())
        stmt = (
            self._insert(lineage)
            .values(dict(zip(_LINK_COLUMNS, row, strict=True)))
            .on_conflict_do_nothing()
            .returning(lineage.c.id)  # rowcount is unreliable with implicit RETURNING
        )
        with self._write() as conn:
            return conn.execute(stmt).first() is not None

    def walk_lineage(
        self, ref: Ref, direction: Literal["upstream", "downstream"], max_depth: int
    ) -> list[LineageEdge]:
        if direction not in ("upstream", "downstream"):
            raise InvalidInput(f"direction must be 'upstream' or 'downstream', got {direction!r}")
        if max_depth < 1:
            raise InvalidInput(f"max_depth must be at least 1, got {max_depth}")
        c = lineage.c
        # "near" is the side we arrive from, "far" the side we walk to.
        if direction == "upstream":
            near_kind, near_id, far_kind, far_id = (
                c.target_kind,
                c.target_id,
                c.source_kind,
                c.source_id,
            )
        else:
            near_kind, near_id, far_kind, far_id = (
                c.source_kind,
                c.source_id,
                c.target_kind,
                c.target_id,
            )
        columns = [c.source_kind, c.source_id, c.target_kind, c.target_id, c.relation]
        seed = select(*columns, literal(1).label("depth"), far_kind.label("nk"), far_id.label("ni"))
        seed = seed.where(near_kind == ref.kind, near_id == ref.id)
        walk = seed.cte("walk", recursive=True)
        step = (
            select(*columns, (walk.c.depth + 1).label("depth"), far_kind, far_id)
            .join_from(lineage, walk, and_(near_kind == walk.c.nk, near_id == walk.c.ni))
            .where(walk.c.depth < max_depth)
        )
        # UNION (not UNION ALL) drops repeated rows, so a cycle stops once depth is exhausted.
        walk = walk.union(step)
        query = (
            select(
                walk.c.source_kind,
                walk.c.source_id,
                walk.c.target_kind,
                walk.c.target_id,
                walk.c.relation,
                func.min(walk.c.depth).label("depth"),
            )
            .group_by(
                walk.c.source_kind,
                walk.c.source_id,
                walk.c.target_kind,
                walk.c.target_id,
                walk.c.relation,
            )
            .order_by(
                "depth",
                walk.c.source_kind,
                walk.c.source_id,
                walk.c.target_kind,
                walk.c.target_id,
                walk.c.relation,
            )
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            LineageEdge(
                source=Ref(row.source_kind, row.source_id),
                target=Ref(row.target_kind, row.target_id),
                relation=row.relation,
                depth=row.depth,
            )
            for row in rows
        ]

    # -- blob references -------------------------------------------------------------------
    def add_blob_refs(self, refs: Iterable[BlobRef]) -> None:
        iterator = iter(refs)
        with self._write() as conn:
            while chunk := list(itertools.islice(iterator, _CHUNK)):
                stamp = now_ms()
                rows = []
                for ref in chunk:
                    if ref.kind not in ("file", "manifest"):
                        raise InvalidInput(
                            f"blob ref kind must be 'file' or 'manifest', got {ref.kind!r}"
                        )
                    rows.append(
                        {
                            "digest": ref.digest,
                            "owner_kind": ref.owner.kind,
                            "owner_id": ref.owner.id,
                            "kind": ref.kind,
                            "created_ms": stamp,
                        }
                    )
                conn.execute(self._insert(blob_refs).on_conflict_do_nothing(), rows)

    def remove_blob_refs(self, owner: Ref) -> int:
        with self._write() as conn:
            result = conn.execute(
                blob_refs.delete().where(
                    blob_refs.c.owner_kind == owner.kind, blob_refs.c.owner_id == owner.id
                )
            )
            return int(result.rowcount)

    def iter_blob_refs(self) -> Iterator[tuple[str, str]]:
        query = select(blob_refs.c.digest, blob_refs.c.kind).distinct().order_by(blob_refs.c.digest)
        with self._read() as conn:
            for row in conn.execution_options(yield_per=5000).execute(query):
                yield row.digest, row.kind
