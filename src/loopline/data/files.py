"""Finding, hashing and storing the files of a dataset version, fast.

Adding a directory is three passes: list the files (one ``stat`` each), ask the local hash index
which of them are unchanged since they were last hashed, then hash-and-store the rest in
parallel (one read per file: the bytes are hashed while they are copied into the blob store;
BLAKE3 releases the GIL, so threads use every core). Blobs are written without an ``fsync``
each and made durable by one sync at the end, before the version is recorded.
"""

from __future__ import annotations

import glob
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from loopline.blobs.cas import BlobStore, Manifest, ManifestEntry
from loopline.errors import InvalidInput, NotFound
from loopline.paths import safe_relpath
from loopline.store.hash_index import FileStat, HashIndex

__all__ = ["SKIPPED_DIRS", "FoundFile", "StoreReport", "find_files", "store_files"]

SKIPPED_DIRS = frozenset({".loopline", ".git", ".dvc"})
"""Directories never taken into a dataset: workspace state and other tools' caches."""
_GLOB_CHARS = frozenset("*?[")
_RACY_NS = 1_000_000_000
"""Files changed within this long before the add started are hashed but not indexed: a write
in the same clock tick could leave every recorded stat unchanged (git's "racily clean"
problem)."""


@dataclass(frozen=True)
class FoundFile:
    relpath: str
    """POSIX path inside the version."""
    stat: FileStat


@dataclass(frozen=True)
class StoreReport:
    manifest: Manifest
    hashed: int
    """Files read and hashed (not found unchanged in the index)."""
    reused: int
    """Files whose digest came from the index (not read at all)."""


def _stat(path: Path, relpath: str) -> FoundFile:
    st = path.stat()
    return FoundFile(
        safe_relpath(relpath, "file path"),
        FileStat(str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns),
    )


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        for name in sorted(filenames):
            full = Path(dirpath) / name
            try:
                mode = full.stat().st_mode
            except OSError:
                continue  # a dangling link
            if stat.S_ISREG(mode):
                yield full, full.relative_to(root).as_posix()


def find_files(source: str | os.PathLike[str]) -> list[FoundFile]:
    """The files ``source`` names: a file (stored under its own name), a directory (every file
    below it, by relative path) or a glob such as ``data/**/*.csv`` (paths relative to the
    glob's fixed leading directories). NotFound when nothing matches."""
    text = os.fspath(source)
    path = Path(text)
    if path.is_file():
        return [_stat(path, path.name)]
    if path.is_dir():
        found = [_stat(full, rel) for full, rel in _walk(path)]
        if not found:
            raise NotFound(f"directory {text} holds no files")
        return found
    if not _GLOB_CHARS & set(text):
        raise NotFound(f"{text} is not a file, a directory or a glob that matches anything")
    parts = Path(text).parts
    fixed = [p for p in parts[: next(i for i, p in enumerate(parts) if _GLOB_CHARS & set(p))]]
    base = Path(*fixed) if fixed else Path(".")
    found = []
    for match in sorted(glob.glob(text, recursive=True)):
        full = Path(match)
        if full.is_file() and not SKIPPED_DIRS & set(full.parts):
            found.append(_stat(full, full.relative_to(base).as_posix()))
    if not found:
        raise NotFound(f"the glob {text} matches no files")
    return found


def store_files(
    files: Sequence[FoundFile],
    blobs: BlobStore,
    index: HashIndex | None,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> StoreReport:
    """Store every file's bytes (once per distinct content) and return the manifest. Files are
    checked after reading: one that changed while it was being added fails the add."""
    seen: dict[str, FoundFile] = {}
    for f in files:
        if f.relpath in seen:
            raise InvalidInput(f"two files would be stored at {f.relpath!r}")
        seen[f.relpath] = f
    started_ns = time.time_ns()
    known = index.lookup([f.stat for f in files]) if index is not None else {}
    digests: dict[str, str] = {}
    todo: list[FoundFile] = []
    for f in files:
        digest = known.get(f.stat.path)
        if digest is None:
            todo.append(f)
        else:
            digests[f.relpath] = digest
            if progress is not None:
                progress(f.stat.size)
    pool_size = workers or min(32, (os.cpu_count() or 1) * 2)

    def put(f: FoundFile) -> str:
        digest = blobs.put_file(f.stat.path, progress, durable=False)
        after = os.stat(f.stat.path)
        if (after.st_size, after.st_mtime_ns) != (f.stat.size, f.stat.mtime_ns):
            raise InvalidInput(f"{f.stat.path} changed while it was being added; add it again")
        return digest

    with ThreadPoolExecutor(pool_size) as pool:
        # Unchanged files still need their blob: it may have been garbage-collected.
        distinct = sorted(set(digests.values()))
        present = dict(zip(distinct, pool.map(blobs.exists, distinct), strict=True))
        missing = [f for f in files if f.relpath in digests and not present[digests[f.relpath]]]
        for f in missing:
            del digests[f.relpath]
        todo.extend(missing)
        for f, digest in zip(todo, pool.map(put, todo), strict=True):
            digests[f.relpath] = digest
    blobs.sync()
    if index is not None:
        index.record(
            (f.stat, digests[f.relpath]) for f in todo if f.stat.mtime_ns < started_ns - _RACY_NS
        )
    entries = tuple(
        ManifestEntry(f.relpath, digests[f.relpath], f.stat.size)  # type: ignore[arg-type]
        for f in sorted(files, key=lambda f: f.relpath)
    )
    return StoreReport(Manifest(entries), len(todo), len(files) - len(todo))
