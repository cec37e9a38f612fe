"""Blobs in a local directory: ``<root>/ab/cdef...``, staged in ``<root>/.staging``.

Staging lives under the same root so publication is a same-filesystem ``os.replace``: atomic, and
no byte is copied twice. Published files are made read-only so a stray write cannot silently
change content that its name vouches for.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from loopline.blobs.base import BlobBackend, Staged, StoredObject
from loopline.errors import NotFound, PermissionDenied

__all__ = ["LocalBackend"]

STAGING = ".staging"


class _LocalStaged(Staged):
    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        fd, name = tempfile.mkstemp(dir=backend.staging_dir, prefix="put-")
        self._path = Path(name)
        # Buffered: BufferedWriter.write() writes everything or raises, where a raw write may
        # return short; chunks larger than the buffer still go straight to the file.
        self.file = os.fdopen(fd, "wb", buffering=1024 * 1024)

    def publish(self, key: str, *, durable: bool = True) -> None:
        self.file.flush()
        if durable:
            os.fsync(self.file.fileno())
        self.file.close()
        target = self._backend.path_for(key)
        if target.exists():
            self._path.unlink(missing_ok=True)
            return
        target.parent.mkdir(exist_ok=True)
        os.chmod(self._path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(self._path, target)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        self._path.unlink(missing_ok=True)


class LocalBackend(BlobBackend):
    def __init__(self, root: str | os.PathLike[str]) -> None:
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

    def sync(self) -> None:
        # One flush of everything written since, instead of an fsync per file: adding 20,000
        # files would otherwise spend most of its time waiting on the disk.
        os.sync()

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
        with os.scandir(self.staging_dir) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < older_than:
                        os.unlink(entry.path)
                        removed += 1
        return removed
