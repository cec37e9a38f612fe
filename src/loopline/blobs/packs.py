"""Pack files: many small blobs in one file, so adding 20,000 small files creates a handful of
files instead of 20,000 (on ext4, creating the files cost more than hashing and copying them).

One pack is one self-describing file, published whole by a rename, so readers see all of it
or nothing::

    header   8 bytes    b"LLPACK01"
    data     the blobs' bytes back to back, no framing
    index    one 48-byte record per blob, sorted by digest:
             raw BLAKE3 digest (32 bytes), offset (u64), length (u64), big-endian
    footer   56 bytes   index offset (u64), record count (u64),
                        BLAKE3 of the index (32 bytes), b"LLPACKIX"

The index is at the end because a blob's digest is known only after its bytes are written.
Blobs in a pack are verified on read like loose ones (the reader hashes what it streams), so a
damaged entry is reported as damaged; a pack whose footer or index is damaged is skipped as a
whole and its blobs read as missing. Packs are never changed in place: garbage collection
copies the surviving entries into a new pack, publishes it, then deletes the old one.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import blake3

from loopline.blobs.base import Pack

__all__ = [
    "PACK_SUFFIX",
    "PackEntry",
    "PackSlice",
    "PackWriter",
    "copy_entries",
    "read_index",
]

MAGIC = b"LLPACK01"
INDEX_MAGIC = b"LLPACKIX"
PACK_SUFFIX = ".pack"
_RECORD = struct.Struct(">32sQQ")
_FOOTER = struct.Struct(">QQ32s8s")
_COPY = 1024 * 1024


@dataclass(frozen=True)
class PackEntry:
    key: str
    """The blob's key, ``ab/cdef...``."""
    offset: int
    length: int


def _raw(key: str) -> bytes:
    """``ab/cdef...`` as its 32 raw bytes; only digest keys can go into a pack."""
    try:
        raw = bytes.fromhex(key[:2] + key[3:]) if key[2:3] == "/" else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{key!r} is not a blob key and cannot be packed")
    return raw


def _key(raw: bytes) -> str:
    text = raw.hex()
    return f"{text[:2]}/{text[2:]}"


class PackWriter(Pack):
    """Appends blobs to a staging file; :meth:`publish` writes the index and renames the file
    into place. Not thread-safe: each writer thread has its own pack."""

    def __init__(self, staged: Path, publish_to: Path) -> None:
        self._staged = staged
        self._target = publish_to
        # Unbuffered: a buffer would copy every byte once more in user space before the
        # kernel copies it into the page cache (measured: a third of a bulk add's CPU).
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._pos = 0
        self.write(MAGIC)
        self._start = self._pos
        self._records: list[tuple[bytes, int, int]] = []

    @property
    def size(self) -> int:
        return self._pos

    @property
    def count(self) -> int:
        return len(self._records)

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:  # a raw write may be short; BufferedWriter would loop the same way
            n = self._file.write(view)
            view = view[n:]
            self._pos += n

    def add(self, key: str) -> None:
        self._records.append((_raw(key), self._start, self._pos - self._start))
        self._start = self._pos

    def undo(self) -> None:
        if self._pos != self._start:
            self._file.seek(self._start)
            self._file.truncate()
            self._pos = self._start

    def publish(self, *, durable: bool = True) -> Path | None:
        """Write the index and footer, then rename the pack into place; returns its path, or
        None (and removes the file) if nothing was added."""
        if not self._records:
            self.discard()
            return None
        self.undo()
        self._records.sort()
        index = b"".join(_RECORD.pack(*r) for r in self._records)
        digest = blake3.blake3(index).digest()
        at = self._pos
        self.write(index)
        self.write(_FOOTER.pack(at, len(self._records), digest, INDEX_MAGIC))
        if durable:
            os.fsync(self._file.fileno())
        self._file.close()
        # One rename per pack: the pack is complete before its name appears.
        os.replace(self._staged, self._target)
        if durable:
            fd = os.open(self._target.parent, os.O_RDONLY)
            try:
                os.fsync(fd)  # the new name, too, before a caller deletes an old copy
            finally:
                os.close(fd)
        return self._target

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        self._staged.unlink(missing_ok=True)


def read_index(path: str | os.PathLike[str]) -> list[PackEntry]:
    """Every entry of the pack at ``path``. ValueError if its footer or index is damaged;
    FileNotFoundError if it is gone."""
    with open(path, "rb") as fh:
        end = fh.seek(0, io.SEEK_END)
        if end < len(MAGIC) + _FOOTER.size:
            raise ValueError(f"pack {path} is truncated")
        fh.seek(end - _FOOTER.size)
        index_at, count, digest, magic = _FOOTER.unpack(fh.read(_FOOTER.size))
        if magic != INDEX_MAGIC or index_at + count * _RECORD.size != end - _FOOTER.size:
            raise ValueError(f"pack {path} has a damaged footer")
        fh.seek(index_at)
        index = fh.read(count * _RECORD.size)
    if blake3.blake3(index).digest() != digest:
        raise ValueError(f"pack {path} has a damaged index")
    entries = []
    for raw, offset, length in _RECORD.iter_unpack(index):
        if offset < len(MAGIC) or offset + length > index_at:
            raise ValueError(f"pack {path} has a damaged index")
        entries.append(PackEntry(_key(raw), offset, length))
    return entries


class PackSlice(io.RawIOBase):
    """A reader for one entry of an open pack: at most ``length`` bytes from ``offset``. A
    truncated pack yields fewer bytes, which the verifying reader above reports as damage."""

    def __init__(self, fh: io.BufferedReader, offset: int, length: int) -> None:
        self._fh = fh
        self._fh.seek(offset)
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        got = self._fh.readinto(memoryview(buffer)[:n])
        self._left -= got
        return got

    def close(self) -> None:
        self._fh.close()
        super().close()


def copy_entries(source: Path, entries: list[PackEntry], into: Pack) -> Iterator[str]:
    """Copy ``entries`` of the pack at ``source`` into ``into``, yielding each key once added
    (garbage collection keeping a pack's surviving blobs)."""
    with open(source, "rb") as fh:
        for entry in entries:
            fh.seek(entry.offset)
            left = entry.length
            while left:
                chunk = fh.read(min(left, _COPY))
                if not chunk:
                    break  # truncated: the copy keeps the damage, verified reads report it
                into.write(chunk)
                left -= len(chunk)
            into.add(entry.key)
            yield entry.key
