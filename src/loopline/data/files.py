"""Finding, hashing and storing the files of a dataset version, fast.

Adding a directory is three passes: list the files (one ``stat`` each), ask the local hash index
which of them are unchanged since they were last hashed, then hash-and-store the rest in
parallel (one read per file: the bytes are hashed while they are copied into the blob store;
BLAKE3 releases the GIL, so threads use every core). The files go in through one
:class:`~loopline.blobs.cas.BlobBatch`: on a local store the small ones are appended to one pack
file per thread instead of becoming a file each, and the packs are published, complete, before
the version row is committed. Blobs are written without an ``fsync`` each (see
:meth:`~loopline.blobs.base.Staged.publish`).
"""

from __future__ import annotations

import glob
import os
import stat
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

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


class FoundFile(NamedTuple):
    """A tuple for the same reason as :class:`FileStat`: one per file found."""

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


def _walk(root: str, prefix: str = "") -> Iterator[FoundFile]:
    """Every regular file below ``root`` (an absolute, resolved path), sorted, by scandir: one
    ``stat`` per file and no Path objects, which matters at tens of thousands of files. Names
    read from a directory cannot hold "/" or NUL, so the relative paths need no checking."""
    with os.scandir(root) as entries:
        ordered = sorted(entries, key=lambda e: e.name)
    for entry in ordered:
        try:
            if entry.is_dir():
                if entry.name not in SKIPPED_DIRS and not entry.is_symlink():
                    yield from _walk(entry.path, f"{prefix}{entry.name}/")
                continue
            st = entry.stat()  # follows a symlinked file to its content
        except OSError:
            continue  # vanished, or a dangling link
        if stat.S_ISREG(st.st_mode):
            yield FoundFile(
                prefix + entry.name,
                FileStat(entry.path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns),
            )


def find_files(source: str | os.PathLike[str]) -> list[FoundFile]:
    """The files ``source`` names: a file (stored under its own name), a directory (every file
    below it, by relative path) or a glob such as ``data/**/*.csv`` (paths relative to the
    glob's fixed leading directories). NotFound when nothing matches."""
    text = os.fspath(source)
    path = Path(text)
    if path.is_file():
        return [_stat(path, path.name)]
    if path.is_dir():
        found = list(_walk(os.path.realpath(path)))
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
    present: Collection[str] = (),
) -> StoreReport:
    """Store every file's bytes (once per distinct content) and return the manifest. Files are
    checked after reading: one that changed while it was being added fails the add.
    ``present`` holds digests known to be stored and kept (the dataset's latest version
    references them), which spares checking each unchanged file's blob."""
    seen: dict[str, FoundFile] = {}
    for f in files:
        if f.relpath in seen:
            raise InvalidInput(f"two files would be stored at {f.relpath!r}")
        seen[f.relpath] = f
    started_ns = time.time_ns()
    known = index.lookup([f.stat for f in files]) if index is not None else {}
    digests: dict[str, str] = {}
    todo: list[FoundFile] = []
    reused_bytes = 0
    for f in files:
        digest = known.get(f.stat.path)
        if digest is None:
            todo.append(f)
        else:
            digests[f.relpath] = digest
            reused_bytes += f.stat.size
    if progress is not None and reused_bytes:
        progress(reused_bytes)
    # One thread per core: hashing and copying release the GIL, and more threads only
    # contend for it (measured: futex calls dominated the profile with two per core).
    pool_size = workers or max(2, os.cpu_count() or 1)

    writer = blobs.batch(durable=False)

    def put(f: FoundFile) -> str:
        digest = writer.put_file(f.stat.path, progress)
        after = os.stat(f.stat.path)
        if (after.st_size, after.st_mtime_ns) != (f.stat.size, f.stat.mtime_ns):
            raise InvalidInput(f"{f.stat.path} changed while it was being added; add it again")
        return digest

    def put_batch(part: Sequence[FoundFile]) -> list[str]:
        return [put(f) for f in part]

    with writer, ThreadPoolExecutor(pool_size) as pool:
        # Unchanged files still need their blob, which may have been garbage-collected unless
        # a version still holds it.
        unsure = sorted(set(digests.values()) - set(present))
        found = set(present)
        found.update(d for d, ok in zip(unsure, pool.map(blobs.exists, unsure), strict=True) if ok)
        missing = [f for f in files if f.relpath in digests and digests[f.relpath] not in found]
        for f in missing:
            del digests[f.relpath]
        todo.extend(missing)
        # Batches, not one task per file: a task costs tens of microseconds to hand over.
        size = max(1, min(256, len(todo) // (pool_size * 4) or 1))
        batches = [todo[i : i + size] for i in range(0, len(todo), size)]
        for part, stored in zip(batches, pool.map(put_batch, batches), strict=True):
            for f, digest in zip(part, stored, strict=True):
                digests[f.relpath] = digest
    if index is not None:
        index.record(
            (f.stat, digests[f.relpath]) for f in todo if f.stat.mtime_ns < started_ns - _RACY_NS
        )
    entries = tuple(
        ManifestEntry(f.relpath, digests[f.relpath], f.stat.size)  # type: ignore[arg-type]
        for f in sorted(files, key=lambda f: f.relpath)
    )
    return StoreReport(Manifest(entries), len(todo), len(files) - len(todo))
