"""Checks for paths that come from users or from stored data (artifact paths, manifest entries).

Every such path is relative, POSIX-style and stays inside the directory it is joined to. The
check is lexical (no filesystem access), so it gives the same answer on the server and the
client, and :func:`join_inside` adds a resolved-path check for symlinks on disk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from loopline.errors import InvalidInput

__all__ = ["iter_files", "join_inside", "safe_relpath"]

_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_PATH_LEN = 4096


def safe_relpath(path: str, field: str = "path") -> str:
    """Return ``path`` normalised (``a//b/./c`` -> ``a/b/c``) or raise InvalidInput naming
    ``field``: empty, NUL bytes, absolute paths, drive letters, backslashes and any ``..``
    segment are all refused."""
    if not isinstance(path, str) or path == "":
        raise InvalidInput(f"{field} must be a non-empty relative path")
    if "\x00" in path:
        raise InvalidInput(f"{field} {path!r} contains a NUL byte")
    if len(path) > MAX_PATH_LEN:
        raise InvalidInput(f"{field} is longer than {MAX_PATH_LEN} characters")
    if "\\" in path:
        raise InvalidInput(f"{field} {path!r} contains a backslash; use '/' as the separator")
    if path.startswith("/") or _DRIVE.match(path):
        raise InvalidInput(f"{field} {path!r} is absolute; it must be relative")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidInput(f"{field} {path!r} contains '..'; paths may not leave their root")
    if not parts:
        raise InvalidInput(f"{field} {path!r} names no file")
    return "/".join(parts)  # the same as PurePosixPath(*parts) for these parts, much cheaper


def join_inside(root: Path, relpath: str, field: str = "path") -> Path:
    """``root / relpath`` after :func:`safe_relpath`, also refusing a result that a symlink
    already on disk would carry outside ``root``."""
    clean = safe_relpath(relpath, field)
    base = root.resolve()
    target = (base / clean).resolve()
    if target != base and base not in target.parents:
        raise InvalidInput(f"{field} {relpath!r} resolves outside {root} (through a symlink)")
    return target


def iter_files(root: Path) -> Iterator[tuple[Path, str]]:
    """Every regular file under ``root`` as ``(path, POSIX path relative to root)``, in a
    stable (sorted, depth-first) order, so a directory logs the same way every time."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            if full.is_file():
                yield full, full.relative_to(root).as_posix()
