"""Blobs in a local directory: loose ones at ``<root>/ab/cdef...``, small ones written in bulk
in pack files ``<root>/packs/<id>.pack`` (format in :mod:`loopline.blobs.packs`), both staged
in ``<root>/.staging``.

Staging lives under the same root so publication is a same-filesystem link or rename: atomic,
and no byte is copied twice. Published files are read-only so a stray write cannot silently
change content that its name vouches for. A blob may be loose, packed, or both (then either
copy serves); readers look for a loose file first, then in the packs' indexes, which this
process keeps in memory (about 150 bytes per packed blob) and re-reads when ``packs/`` changes.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, ClassVar

from loopline.blobs.base import BlobBackend, Pack, Staged, StoredObject
from loopline.blobs.packs import PACK_SUFFIX, PackEntry, PackSlice, PackWriter, copy_entries
from loopline.blobs.packs import read_index as read_pack_index
from loopline.errors import NotFound, PermissionDenied

__all__ = ["LocalBackend"]

STAGING = ".staging"
PACKS = "packs"
_RACY_NS = 2_000_000_000
"""A directory listing taken this soon after the directory's last change may miss a change
made in the same timestamp tick, so it is not trusted on the directory's mtime alone."""
_BLOB_MODE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_STAGING_PREFIX = uuid.uuid4().hex
"""Unique to this process (and re-drawn in a forked child, below); with a counter, names
staging files without a random draw per file."""
_counter = itertools.count()
_LANES = 16


def _new_prefix() -> None:
    global _STAGING_PREFIX
    _STAGING_PREFIX = uuid.uuid4().hex


os.register_at_fork(after_in_child=_new_prefix)


class _LocalStaged(Staged):
    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        # Created read-only (the mode binds later opens, not this descriptor): published blobs
        # must not be writable, and setting the mode now saves a chmod per blob.
        # Writers spread over a few staging subdirectories: removing a name locks its
        # directory, and one directory shared by every thread became the bottleneck.
        lane = backend.staging_lane(threading.get_native_id() % _LANES)
        self._path = lane / f"put-{_STAGING_PREFIX}-{next(_counter)}"
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _BLOB_MODE)
        # Buffered: BufferedWriter.write() writes everything or raises, where a raw write may
        # return short; chunks larger than the buffer still go straight to the file.
        self.file = os.fdopen(fd, "wb", buffering=256 * 1024)

    def publish(self, key: str, *, durable: bool = True) -> None:
        self.file.flush()
        if durable:
            os.fsync(self.file.fileno())
        self.file.close()
        # A hard link publishes the complete file under its name in one step, like a rename,
        # but without the filesystem-wide lock a rename across directories takes (under
        # parallel writers that lock was the largest cost of adding many small files), and an
        # existing blob (same digest, same bytes) makes it fail instead of being replaced.
        target = self._backend.path_for(key)
        self._backend.make_fan_dir(target.parent)
        try:
            try:
                os.link(self._path, target)
            except FileNotFoundError:  # the fan directory was removed behind our back
                target.parent.mkdir(exist_ok=True)
                os.link(self._path, target)
        except FileExistsError:
            pass
        finally:
            self._path.unlink(missing_ok=True)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        self._path.unlink(missing_ok=True)


class _PackIndex:
    """Where each packed blob is: key -> (pack path, entry), for the packs in ``packs/``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lock = threading.Lock()
        self.where: dict[str, tuple[str, PackEntry]] = {}
        self.entries: dict[str, list[PackEntry]] = {}
        """Pack path -> its entries, for every pack loaded."""
        self.listed_mtime_ns: int | None = None
        self.listed_at_ns = 0

    def refresh(self, *, force: bool = False) -> None:
        """Load packs that appeared since the last look; rebuild if any disappeared. Skipped
        when the directory's mtime shows no change since a listing that was not racy."""
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if (
            not force
            and mtime == self.listed_mtime_ns
            and (mtime is None or self.listed_at_ns - mtime > _RACY_NS)
        ):
            return
        with self.lock:
            listed_at = time.time_ns()
            try:
                names = [n for n in os.listdir(self.directory) if n.endswith(PACK_SUFFIX)]
            except FileNotFoundError:
                names = []
            paths = {os.path.join(self.directory, n) for n in names}
            if paths == self.entries.keys():  # the usual answer while a batch is writing
                self.listed_mtime_ns, self.listed_at_ns = mtime, listed_at
                return
            entries = dict(self.entries)
            gone = set(entries) - paths
            for path in gone:
                del entries[path]
            new = sorted(paths - set(entries))
            for path in new:
                try:
                    entries[path] = read_pack_index(path)
                except FileNotFoundError:
                    continue  # rewritten and removed between the listing and now
                except (ValueError, OSError):
                    entries[path] = []  # damaged: its blobs read as missing
            if gone:
                where = {}
                for path, found in entries.items():
                    where.update((e.key, (path, e)) for e in found)
            else:
                where = dict(self.where)
                for path in new:
                    where.update((e.key, (path, e)) for e in entries.get(path, ()))
            self.entries, self.where = entries, where
            self.listed_mtime_ns, self.listed_at_ns = mtime, listed_at

    def find(self, key: str) -> tuple[str, PackEntry] | None:
        found = self.where.get(key)
        if found is None:
            self.refresh()
            found = self.where.get(key)
        return found


class LocalBackend(BlobBackend):
    supports_packs: ClassVar[bool] = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._fan_dirs: set[Path] = set()
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)
        self.packs_dir = self.root / PACKS
        self._packs = _PackIndex(self.packs_dir)
        self.staging_dir = self.root / STAGING
        try:
            self.staging_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PermissionDenied(
                f"cannot create blob directory {self.root}: {exc.strerror}; choose a writable "
                "location with --artifacts or LOOPLINE_ARTIFACT_URI"
            ) from exc
        if not os.access(self.staging_dir, os.W_OK):
            raise PermissionDenied(
                f"blob directory {self.root} is not writable; check its permissions or choose "
                "another location with --artifacts or LOOPLINE_ARTIFACT_URI"
            )

    def staging_lane(self, lane: int) -> Path:
        path = self.staging_dir / f"{lane:02x}"
        self.make_fan_dir(path)
        return path

    def make_fan_dir(self, path: Path) -> None:
        """The ``ab/`` directory a blob goes in; remembered, so 20,000 new blobs do not cost
        20,000 mkdir calls."""
        if path not in self._fan_dirs:
            path.mkdir(exist_ok=True)
            self._fan_dirs.add(path)

    def path_for(self, key: str) -> Path:
        return self.root / key

    def exists(self, key: str) -> bool:
        return os.path.isfile(os.path.join(self.uri, key)) or self._packs.find(key) is not None

    def probably_exists(self, key: str) -> bool:
        """Without looking for new packs: during a bulk add, re-listing ``packs/`` on every
        new blob (the listing is not trusted for 2 s after the directory changed) cost more
        than copying the blobs."""
        return os.path.isfile(os.path.join(self.uri, key)) or key in self._packs.where

    def stat(self, key: str) -> StoredObject:
        try:
            st = self.path_for(key).stat()
        except FileNotFoundError:
            pass
        else:
            return StoredObject(key=key, size=st.st_size, mtime=st.st_mtime)
        for _ in range(2):
            found = self._packs.find(key)
            if found is None:
                break
            try:
                mtime = os.stat(found[0]).st_mtime
            except FileNotFoundError:  # rewritten by garbage collection: look again
                self._packs.refresh(force=True)
                continue
            return StoredObject(key=key, size=found[1].length, mtime=mtime)
        raise NotFound(f"blob {key.replace('/', '')} not found in {self.root}")

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self.path_for(key).open("rb")
        except FileNotFoundError:
            pass
        for _ in range(2):
            found = self._packs.find(key)
            if found is None:
                break
            path, entry = found
            try:
                fh = open(path, "rb")  # noqa: SIM115 - owned by the slice
            except FileNotFoundError:  # rewritten by garbage collection: look again
                self._packs.refresh(force=True)
                continue
            return PackSlice(fh, entry.offset, entry.length)  # type: ignore[return-value]
        raise NotFound(f"blob {key.replace('/', '')} not found in {self.root}")

    def stage(self) -> Staged:
        return _LocalStaged(self)

    def new_pack(self) -> Pack:
        lane = self.staging_lane(threading.get_native_id() % _LANES)
        self.make_fan_dir(self.packs_dir)
        return PackWriter(
            lane / f"pack-{_STAGING_PREFIX}-{next(_counter)}",
            self.packs_dir / f"{uuid.uuid4().hex}{PACK_SUFFIX}",
        )

    def publish_path(self, path: Path, key: str) -> None:  # pragma: no cover - staging is used
        raise NotImplementedError("local blobs are always staged")

    def delete(self, key: str) -> bool:
        return self.delete_many([key]) > 0

    def delete_many(self, keys: Iterable[str]) -> int:
        """Unlink loose copies; rewrite each pack holding any of ``keys`` without them (the
        survivors go to a new pack, published and synced before the old one is removed, so a
        crash leaves a blob in two packs at worst, never in none)."""
        wanted = set(keys)
        removed: set[str] = set()
        for key in wanted:
            with contextlib.suppress(FileNotFoundError):
                self.path_for(key).unlink()
                removed.add(key)
        self._packs.refresh(force=True)
        for path, entries in list(self._packs.entries.items()):
            dead = {e.key for e in entries} & wanted
            if not dead:
                continue
            keep = [e for e in entries if e.key not in dead]
            if keep:
                pack = self.new_pack()
                try:
                    for _ in copy_entries(Path(path), keep, pack):
                        pass
                    pack.publish(durable=True)
                except BaseException:
                    pack.discard()
                    raise
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            removed |= dead
        if removed:
            self._packs.refresh(force=True)
        return len(removed)

    def iter_objects(self) -> Iterator[StoredObject]:
        """Every key once, loose or packed. A key stored more than once (loose and packed, or
        in two packs) carries its newest copy's time, so garbage collection, which removes
        every copy, never takes one younger than its grace period."""
        found: dict[str, StoredObject] = {}
        with os.scandir(self.root) as top:
            fans = sorted(e.path for e in top if e.is_dir() and len(e.name) == 2)
        for fan in fans:
            prefix = os.path.basename(fan)
            with os.scandir(fan) as entries:
                for entry in entries:
                    if entry.is_file():
                        st = entry.stat()
                        key = f"{prefix}/{entry.name}"
                        found[key] = StoredObject(key, st.st_size, st.st_mtime)
        self._packs.refresh(force=True)
        for path, entries in self._packs.entries.items():
            try:
                mtime = os.stat(path).st_mtime
            except FileNotFoundError:
                continue
            for e in entries:
                prior = found.get(e.key)
                if prior is None or prior.mtime < mtime:
                    found[e.key] = StoredObject(e.key, e.length, mtime)
        yield from found.values()

    def clean_staging(self, older_than: float) -> int:
        removed = 0
        for dirpath, _dirs, files in os.walk(self.staging_dir):
            for name in files:
                path = os.path.join(dirpath, name)
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(path).st_mtime < older_than:
                        os.unlink(path)
                        removed += 1
        return removed
