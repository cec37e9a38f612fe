"""Switching a SQLite file to WAL safely when several processes open it at once.

Kept apart from ``engine`` so the hash index (plain ``sqlite3``) can use it without importing
SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

__all__ = ["use_wal"]


def use_wal(cursor: Any, timeout_s: float = 60.0) -> None:
    """Put a SQLite database in WAL mode, waiting out openers racing to do the same.

    WAL is a property of the file, so this is a read once the first opener has switched it.
    Switching needs the database to itself, and SQLite answers "database is locked" at once
    (its busy handler is not consulted) when another process is switching or recovering at
    that moment: several processes opening a fresh workspace together met it. Retry until
    the busy timeout instead."""
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
