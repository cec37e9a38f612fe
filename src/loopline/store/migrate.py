"""Schema migrations, applied on open and safe under concurrent openers.

Opening checks the revision without a lock (the common, already-migrated case costs one query).
Otherwise it takes a database-wide lock inside one transaction, checks again and migrates: on
SQLite ``BEGIN IMMEDIATE`` holds the single write lock; on PostgreSQL a transaction-scoped advisory
lock. Both backends run DDL transactionally, so a process killed mid-migration leaves the previous
schema intact.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

__all__ = ["VERSION_TABLE", "current_revision", "head_revision", "upgrade"]

VERSION_TABLE = "loopline_alembic_version"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Arbitrary constant shared by every Loopline process: "LOOPLINE" in ASCII, as a bigint.
_PG_LOCK_KEY = 0x4C4F4F504C494E45


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the package ships no migrations"
    return head


def _revision_on(conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _revision_on(conn)


def upgrade(write_engine: Engine) -> str:
    """Bring the schema to head; ``write_engine`` must open write (locking) transactions."""
    head = head_revision()
    if current_revision(write_engine) == head:
        return head
    with write_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        if _revision_on(conn) == head:  # another process migrated while we waited
            return head
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return head
