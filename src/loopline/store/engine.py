"""Engine setup for the two metadata backends.

SQLite: WAL (readers never block the writer), a busy timeout instead of instant "database is
locked" errors, foreign keys on, and explicit ``BEGIN IMMEDIATE`` for write transactions: the
Python driver's own implicit transactions would let two writers both start reading and then
deadlock on the upgrade to a write lock, which SQLite reports at once, ignoring the timeout.

PostgreSQL: psycopg 3 with a connection pool that checks connections before use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from loopline.config import mask_uri
from loopline.errors import ConfigError, PermissionDenied
from loopline.store.sqlite_wal import use_wal

__all__ = ["WRITE_OPTION", "make_engine", "sqlite_path"]

WRITE_OPTION = "loopline_write"
SQLITE_BUSY_TIMEOUT_MS = 60_000


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, ``None`` for an in-memory database."""
    database = make_url(uri).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def _prepare_sqlite_file(uri: str) -> None:
    path = sqlite_path(uri)
    if path is None:
        return
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermissionDenied(
            f"cannot create directory {directory} for the metadata database: {exc.strerror}; "
            "choose a writable location with --store or LOOPLINE_STORE_URI"
        ) from exc
    if not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PermissionDenied(
            f"metadata database {path} is not writable; check its permissions or choose another "
            "location with --store or LOOPLINE_STORE_URI"
        )


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_engine(uri: str) -> Engine:
    _prepare_sqlite_file(uri)
    engine = create_engine(
        uri,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver; we emit BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        use_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # LIKE is case-sensitive on PostgreSQL and in MLflow's grammar; make SQLite agree.
        cursor.execute("PRAGMA case_sensitive_like = ON")
        # SQLite's lower() folds ASCII only; ILIKE compiles to lower(x) LIKE lower(y), so give
        # it Python's Unicode-aware lower() to answer as PostgreSQL does ('École' ILIKE 'é%').
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _postgres_engine(uri: str) -> Engine:
    url = make_url(uri)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    elif url.drivername != "postgresql+psycopg":
        raise ConfigError(
            f"store URI {mask_uri(uri)!r}: driver {url.drivername!r} is not supported; "
            "use postgresql:// (psycopg 3)"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "PostgreSQL support is not installed; run: pip install 'loopline[postgres]'"
        ) from exc
    return create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 10, "application_name": "loopline"},
    )


def make_engine(uri: str) -> Engine:
    """An engine for ``uri``; raises ConfigError naming the URI when it cannot be understood."""
    try:
        scheme = make_url(uri).get_backend_name()
    except ArgumentError as exc:
        raise ConfigError(f"store URI {mask_uri(uri)!r} is not a valid database URI") from exc
    if scheme == "sqlite":
        return _sqlite_engine(uri)
    if scheme in ("postgresql", "postgres"):
        return _postgres_engine(uri)
    raise ConfigError(f"store URI scheme {scheme!r} is not supported; use sqlite or postgresql")
