"""The byte-level backend contract under the content-addressed store.

A backend knows nothing of digests: it stores opaque keys, and its one hard duty is atomic
publication, so a key is either absent or holds complete bytes (temp file + rename locally; a
single PUT or a completed multipart upload on S3).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar

__all__ = ["BlobBackend", "Pack", "Staged", "StoredObject"]


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    mtime: float
    """Seconds since the epoch of the last write; garbage collection spares young objects."""


class Staged(abc.ABC):
    """A write in progress: bytes go to ``file``; ``publish(key)`` makes them visible at once."""

    file: BinaryIO

    @abc.abstractmethod
    def publish(self, key: str, *, durable: bool = True) -> None:
        """Make the staged bytes readable under ``key``. If ``key`` exists its content is
        identical by construction (keys are digests), so the staged copy is dropped.
        ``durable=False`` skips forcing the bytes to stable storage: the operating system writes
        them back on its own schedule. A killed process loses nothing either way (the kernel
        holds the bytes); only a power loss before write-back can, and verified reads then
        report the damaged blob instead of returning it."""

    @abc.abstractmethod
    def discard(self) -> None:
        """Throw the staged bytes away. Safe to call after publish()."""


class Pack(abc.ABC):
    """Many small blobs written into one object, published whole (see :mod:`loopline.blobs.packs`):
    write one blob's bytes with :meth:`write`, then :meth:`add` its key, or :meth:`undo` them
    (the content turned out to be stored already). Nothing is readable before :meth:`publish`."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Bytes written so far."""

    @abc.abstractmethod
    def write(self, data: bytes | memoryview) -> None: ...

    @abc.abstractmethod
    def add(self, key: str) -> None:
        """The bytes written since the last add/undo are the blob ``key``."""

    @abc.abstractmethod
    def undo(self) -> None:
        """Forget the bytes written since the last add/undo."""

    @abc.abstractmethod
    def publish(self, *, durable: bool = True) -> object:
        """Make every added blob readable at once (see :meth:`Staged.publish` for ``durable``)."""

    @abc.abstractmethod
    def discard(self) -> None:
        """Throw the pack away; nothing in it was ever visible."""


class BlobBackend(abc.ABC):
    """Opaque-key storage. Keys are ``/``-separated relative strings."""

    uri: str
    upload_from_path: ClassVar[bool] = False
    """True when publishing an existing file directly beats staging a copy (remote stores):
    the content store then hashes the file first and calls :meth:`publish_path`."""
    supports_packs: ClassVar[bool] = False
    """True when :meth:`new_pack` works: small blobs written in bulk then share one object (a
    local disk, where creating a file costs more than writing a small one). S3 keeps one
    object per blob: a PUT per blob costs no file creation there, and other S3 tools can still
    read each blob by its key."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def stat(self, key: str) -> StoredObject:
        """Raises NotFound if ``key`` is absent."""

    @abc.abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """A streaming reader. Raises NotFound if ``key`` is absent."""

    @abc.abstractmethod
    def stage(self) -> Staged:
        """Start a write. The staging area is never listed by :meth:`iter_objects`."""

    @abc.abstractmethod
    def publish_path(self, path: Path, key: str) -> None:
        """Store the file at ``path`` under ``key`` atomically, leaving ``path`` in place."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; False if it was not there."""

    def probably_exists(self, key: str) -> bool:
        """:meth:`exists`, except that a "no" may be stale (a copy another process published a
        moment ago): for deduplication, where a wrong "no" costs a second copy, never data."""
        return self.exists(key)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove every key; returns how many were there. Backends with packs override it to
        rewrite each affected pack once, not once per key."""
        return sum(1 for key in keys if self.delete(key))

    def new_pack(self) -> Pack:
        """A pack to write small blobs into; only when :attr:`supports_packs`."""
        raise NotImplementedError(f"{type(self).__name__} stores every blob as its own object")

    @abc.abstractmethod
    def iter_objects(self) -> Iterator[StoredObject]:
        """Every published object, in no particular order."""

    @abc.abstractmethod
    def clean_staging(self, older_than: float) -> int:
        """Delete staged writes abandoned before ``older_than`` (epoch seconds), e.g. by a
        killed process; returns how many."""
