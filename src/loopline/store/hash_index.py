"""The local hash index: which digest a file had when it was last hashed, keyed by what
changes when a file is written (path, size, modification and change times in nanoseconds,
inode). The change time (ctime) cannot be set by a program, so even an edit that keeps the size
and resets the modification time is noticed. Re-adding
a large directory then hashes only the files that changed.

It is a cache, private to one machine (paths and inodes mean nothing elsewhere), so it lives
in its own SQLite file under the workspace's state directory, not in the metadata database. A
missing or unreadable index only costs time: every file is hashed again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from loopline.store.sqlite_wal import use_wal

__all__ = ["FileStat", "HashIndex"]

_CHUNK = 900  # parameters per statement: under SQLite's default limit


class FileStat(NamedTuple):
    """A tuple, not a dataclass: a walk makes one per file, and building a frozen dataclass
    costs several times as much (tens of milliseconds per 20,000 files)."""

    path: str
    """Absolute path."""
    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int = 0


class HashIndex:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        use_wal(conn, timeout_s=30)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
            "mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, "
            "digest TEXT NOT NULL)"
        )
        return conn

    def lookup(self, stats: Sequence[FileStat]) -> dict[str, str]:
        """path -> digest for every file whose size, mtime and inode are as recorded."""
        found: dict[str, str] = {}
        if not stats:
            return found
        wanted = {s.path: (s.size, s.mtime_ns, s.inode, s.ctime_ns) for s in stats}
        try:
            conn = self._connect()
        except sqlite3.Error:
            return found
        try:
            paths = list(wanted)
            for start in range(0, len(paths), _CHUNK):
                chunk = paths[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                query = (
                    "SELECT path, size, mtime_ns, inode, ctime_ns, digest FROM files "
                    f"WHERE path IN ({marks})"  # placeholders only: values are bound
                )
                for row in conn.execute(query, chunk):
                    if row[1:5] == wanted[row[0]]:
                        found[row[0]] = row[5]
        except sqlite3.Error:
            return {}
        finally:
            conn.close()
        return found

    def record(self, entries: Iterable[tuple[FileStat, str]]) -> None:
        rows = [(s.path, s.size, s.mtime_ns, s.inode, s.ctime_ns, d) for s, d in entries]
        if not rows:
            return
        try:
            conn = self._connect()
        except sqlite3.Error:
            return
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.Error:
            pass  # a cache: losing an update only costs a re-hash next time
        finally:
            conn.close()
