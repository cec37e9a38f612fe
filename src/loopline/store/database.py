"""One metadata database, shared by every domain's SQL store.

Holds the two engines (plain reads; ``BEGIN IMMEDIATE`` writes on SQLite), the migration entry
points and the dialect-specific ``INSERT`` used for upserts. Domain stores (foundation, tracking,
registry, ...) each take a :class:`Database`, so one process keeps one connection pool however
many domains it uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from loopline.config import mask_uri
from loopline.errors import StoreUnavailable
from loopline.store import migrate
from loopline.store.engine import WRITE_OPTION, make_engine

__all__ = ["Database", "now_ms"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Database:
    def __init__(self, uri: str, *, migrate_on_open: bool = True) -> None:
        self.uri = uri
        self.engine: Engine = make_engine(uri)
        self.writer: Engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self._write_lock = threading.RLock() if self.engine.dialect.name == "sqlite" else None
        try:
            if migrate_on_open:
                self.upgrade()
            else:
                with self.engine.connect():
                    pass
        except OperationalError as exc:
            self.engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreUnavailable(
                f"cannot open metadata store {mask_uri(uri)}: {reason}; check that the database "
                "server is running and the URI (--store / LOOPLINE_STORE_URI) is right"
            ) from exc

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def schema_revision(self) -> str | None:
        return migrate.current_revision(self.engine)

    def upgrade(self) -> str:
        return migrate.upgrade(self.writer)

    def insert(self, table: Any) -> Any:
        """``INSERT`` with ``on_conflict_do_*`` for this dialect."""
        if self.dialect == "postgresql":  # imported lazily: ~60 ms a SQLite user never needs
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def read(self) -> Connection:
        """A connection for reads; use as a context manager."""
        return self.engine.connect()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (commit on success, rollback on error); use as a context manager.

        On SQLite the threads of one process also take turns on a lock first: waiting there
        wakes the next writer the moment the previous one commits, where SQLite's busy handler
        would sleep and poll (under a many-threaded server, seconds of such sleeps per minute).
        Other processes still meet at SQLite's own lock."""
        if self._write_lock is None:
            with self.writer.begin() as conn:
                yield conn
            return
        with self._write_lock, self.writer.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()
