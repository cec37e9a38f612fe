"""Blobs in a local directory: ``<root>/ab/cdef...``, staged in ``<root>/.staging``.

Staging lives under the same root so publication is a same-filesystem ``os.replace``: atomic, and
no byte is copied twice. Published files are made read-only so a stray write cannot silently
change content that its name vouches for.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from loopline.blobs.base import BlobBackend, Staged, StoredObject
from loopline.errors import NotFound, PermissionDenied

__all__ = ["LocalBackend"]

STAGING = ".staging"
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


class LocalBackend(BlobBackend):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._fan_dirs: set[Path] = set()
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)
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
        return self.path_for(key).is_file()

    def stat(self, key: str) -> StoredObject:
        try:
            st = self.path_for(key).stat()
        except FileNotFoundError:
            raise NotFound(f"blob {key.replace('/', '')} not found in {self.root}") from None
        return StoredObject(key=key, size=st.st_size, mtime=st.st_mtime)

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self.path_for(key).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {key.replace('/', '')} not found in {self.root}") from None

    def stage(self) -> Staged:
        return _LocalStaged(self)

    def publish_path(self, path: Path, key: str) -> None:  # pragma: no cover - staging is used
        raise NotImplementedError("local blobs are always staged")

    def delete(self, key: str) -> bool:
        try:
            self.path_for(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def iter_objects(self) -> Iterator[StoredObject]:
        with os.scandir(self.root) as top:
            fans = sorted(e.path for e in top if e.is_dir() and len(e.name) == 2)
        for fan in fans:
            prefix = os.path.basename(fan)
            with os.scandir(fan) as entries:
                for entry in entries:
                    if entry.is_file():
                        st = entry.stat()
                        yield StoredObject(f"{prefix}/{entry.name}", st.st_size, st.st_mtime)

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
