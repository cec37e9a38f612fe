"""Switching SQLite to WAL while other connections hold the file: waited out, not failed."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from loopline.store.sqlite_wal import use_wal


def _rollback_journal_db(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.close()


def _hold_exclusive(path: Path, seconds: float) -> threading.Thread:
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    ready = threading.Event()

    def release() -> None:
        ready.set()
        time.sleep(seconds)
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    ready.wait()
    return thread


def test_switch_waits_for_a_connection_that_holds_the_file(tmp_path: Path):
    """With SQLite's own busy handler out of play (timeout 0), the switch is refused at once
    while another connection holds the file; use_wal retries until it is free."""
    path = tmp_path / "db.sqlite"
    _rollback_journal_db(path)
    holder = _hold_exclusive(path, 0.3)
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        conn.execute("PRAGMA journal_mode = WAL")
    started = time.monotonic()
    use_wal(conn, timeout_s=10)
    waited = time.monotonic() - started
    holder.join()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert waited > 0.05, "the switch cannot have happened while the file was held"
    conn.close()


def test_gives_up_after_the_timeout_with_the_database_error(tmp_path: Path):
    path = tmp_path / "db.sqlite"
    _rollback_journal_db(path)
    holder = _hold_exclusive(path, 1.0)
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        use_wal(conn, timeout_s=0.2)
    holder.join()
    conn.close()


def test_a_database_already_in_wal_is_left_as_is(tmp_path: Path):
    path = tmp_path / "db.sqlite"
    _rollback_journal_db(path)
    first = sqlite3.connect(path, isolation_level=None)
    use_wal(first)
    reader = sqlite3.connect(path, timeout=0, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()
    second = sqlite3.connect(path, timeout=0, isolation_level=None)
    use_wal(second, timeout_s=0.1)  # a read of the mode: no lock needed, so no wait
    assert second.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for conn in (reader, second, first):
        conn.close()
