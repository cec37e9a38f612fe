"""Schema migrations, applied on open and safe under concurrent openers.

Opening checks the revision with one plain query (importing Alembic costs ~0.4 s, so it is
loaded only when there is something to migrate). Otherwise it takes a database-wide lock inside
one transaction, checks again and migrates: on SQLite ``BEGIN IMMEDIATE`` holds the single write
lock; on PostgreSQL a transaction-scoped advisory lock. Both backends run DDL transactionally,
so a process killed mid-migration leaves the previous schema intact.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

__all__ = ["HEAD", "VERSION_TABLE", "alembic_head", "current_revision", "head_revision", "upgrade"]

VERSION_TABLE = "loopline_alembic_version"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD = "0011"
"""The newest revision in ``migrations/versions``; a test keeps it equal to Alembic's head."""
# Arbitrary constant shared by every Loopline process: "LOOPLINE" in ASCII, as a bigint.
_PG_LOCK_KEY = 0x4C4F4F504C494E45


def head_revision() -> str:
    return HEAD


def alembic_head() -> str | None:
    """The head as Alembic computes it from the scripts (slow; for tests and checks)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _revision_on(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one_or_none()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _revision_on(conn)


def upgrade(write_engine: Engine) -> str:
    """Bring the schema to head; ``write_engine`` must open write (locking) transactions."""
    if current_revision(write_engine) == HEAD:
        return HEAD
    from alembic import command
    from alembic.config import Config

    with write_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        if _revision_on(conn) == HEAD:  # another process migrated while we waited
            return HEAD
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return HEAD
