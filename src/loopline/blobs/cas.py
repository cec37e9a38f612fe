"""The content-addressed blob store: BLAKE3 digests, verified reads, deduplication, manifests.

Content addressing lives here once; backends only move opaque bytes. A digest is the lowercase
hex BLAKE3 of the content (64 characters) and its key is ``ab/cdef...``: the two-character
fan-out keeps directories small on local disks.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NewType

import blake3

from loopline.blobs.base import BlobBackend, Pack, StoredObject
from loopline.errors import IntegrityError, InvalidInput, NotFound
from loopline.paths import join_inside, safe_relpath

__all__ = [
    "CHUNK_SIZE",
    "PACK_MAX_BLOB",
    "BlobBatch",
    "BlobStore",
    "Digest",
    "Manifest",
    "ManifestEntry",
    "hash_bytes",
]

Digest = NewType("Digest", str)
Progress = Callable[[int], None]
"""Called with the number of bytes just processed; drives progress bars."""
CHUNK_SIZE = 4 * 1024 * 1024
MANIFEST_FORMAT = 1
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


_PARALLEL_HASH_MIN = 8 * 1024 * 1024
PACK_MAX_BLOB = 4 * 1024 * 1024
"""Files smaller than this go into packs when a batch stores them (on backends with packs);
larger ones stay loose: one file creation per 4 MiB is noise, and a loose blob is never
copied again when garbage collection rewrites a pack."""
PACK_TARGET_SIZE = 256 * 1024 * 1024
"""A pack is published once it holds this many bytes and the next one started: it bounds
what garbage collection copies when it rewrites a pack with dead entries."""


def _hasher(size: int | None = None) -> blake3.blake3:
    """AUTO lets blake3 hash a large input on several cores. For a file known to be small it
    only costs: its worker pool wakes and yields for every chunk, which, across thousands of
    files hashed by parallel threads, outweighs the hashing itself."""
    if size is not None and size < _PARALLEL_HASH_MIN:
        return blake3.blake3(max_threads=1)
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


_buffers = threading.local()


def _chunks(src: BinaryIO) -> Iterator[memoryview]:
    """Read ``src`` into one reused per-thread buffer. ``read(CHUNK_SIZE)`` would allocate (and
    the allocator map and unmap) a fresh 4 MiB object per call, which dominates the cost of
    storing many small files from several threads."""
    readinto = getattr(src, "readinto", None)
    if readinto is None:
        yield from (memoryview(c) for c in iter(lambda: src.read(CHUNK_SIZE), b""))
        return
    buf = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = memoryview(bytearray(CHUNK_SIZE))
    while n := readinto(buf):
        yield buf[:n]


def hash_bytes(data: bytes) -> Digest:
    return Digest(_hasher().update(data).hexdigest())


def check_digest(digest: str) -> Digest:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidInput(f"{digest!r} is not a blob digest (64 lowercase hex characters)")
    return Digest(digest)


def _key(digest: Digest) -> str:
    return f"{digest[:2]}/{digest[2:]}"


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    digest: Digest
    size: int
    executable: bool = False


@dataclass(frozen=True)
class Manifest:
    """A directory snapshot: relative POSIX paths, sorted, each with its blob digest."""

    entries: tuple[ManifestEntry, ...]

    @property
    def total_size(self) -> int:
        return sum(e.size for e in self.entries)

    def to_bytes(self) -> bytes:
        doc = {
            "loopline_manifest": MANIFEST_FORMAT,
            "files": [
                {"path": e.path, "digest": e.digest, "size": e.size, "executable": e.executable}
                for e in self.entries
            ],
        }
        # Canonical form, so the same tree always has the same manifest digest.
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @staticmethod
    def digests_in(data: bytes, name: str = "manifest") -> set[Digest]:
        """Every blob digest the manifest ``data`` lists (checked), paths left unparsed."""
        try:
            doc = json.loads(data)
            if doc.get("loopline_manifest") != MANIFEST_FORMAT:
                raise ValueError("not a Loopline manifest")
            found = {f["digest"] for f in doc["files"]}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"blob {name} is not a valid directory manifest: {exc}") from exc
        for digest in found:
            check_digest(digest)
        return found

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "manifest") -> Manifest:
        try:
            doc = json.loads(data)
            if doc.get("loopline_manifest") != MANIFEST_FORMAT:
                raise ValueError("not a Loopline manifest")
            entries = tuple(
                ManifestEntry(
                    path=safe_relpath(f["path"], "manifest path"),
                    digest=check_digest(f["digest"]),
                    size=int(f["size"]),
                    executable=bool(f.get("executable", False)),
                )
                for f in doc["files"]
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"blob {name} is not a valid directory manifest: {exc}") from exc
        return cls(entries)


class VerifyingReader(io.RawIOBase):
    """Streams a blob and hashes what passes through; at end of stream a digest mismatch raises
    IntegrityError, so a reader that consumes everything can never accept tampered bytes."""

    def __init__(self, raw: BinaryIO, digest: Digest) -> None:
        self._raw = raw
        self._digest = digest
        self._hasher = _hasher()
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        if not data:
            self._finish()
            return 0
        self._hasher.update(data)
        n = len(data)
        buffer[:n] = data
        return n

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        actual = self._hasher.hexdigest()
        if actual != self._digest:
            raise IntegrityError(
                f"blob {self._digest} is corrupt: its content hashes to {actual}; delete the bad "
                "copy ('loopline blobs verify --delete-corrupt') and store the original bytes "
                "again, or restore it from a backup"
            )

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_regular(path: str | os.PathLike[str]) -> tuple[BinaryIO, int]:
    """An unbuffered reader and the size of the regular file at ``path``, else NotFound."""
    try:
        src = open(path, "rb", buffering=0)  # noqa: SIM115 - returned
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFound(f"file {path} does not exist or is not a regular file") from None
    st = os.fstat(src.fileno())
    if not stat.S_ISREG(st.st_mode):
        src.close()
        raise NotFound(f"file {path} does not exist or is not a regular file")
    return src, st.st_size  # type: ignore[return-value]


class BlobBatch:
    """Many files stored as one unit (a dataset add), from any number of threads. On a backend
    with packs, files under :data:`PACK_MAX_BLOB` are appended to one pack per thread instead
    of becoming a file each; larger files, and every file on other backends, are stored as by
    :meth:`BlobStore.put_file`. Packed blobs become readable when :meth:`commit` publishes the
    packs (or when a pack fills up), never partly; :meth:`abort` throws unpublished packs away.
    Use as a context manager: commit on success, abort on error."""

    def __init__(self, store: BlobStore, *, durable: bool = False) -> None:
        self._store = store
        self._durable = durable
        if store.backend.supports_packs:
            store.backend.probably_exists("00/" + "0" * 62)  # loads the packs' index once
        self._packs: dict[int, Pack] = {}
        self._packed: set[str] = set()
        self._lock = threading.Lock()
        self._packing = store.backend.supports_packs

    def put_file(self, path: str | os.PathLike[str], progress: Progress | None = None) -> Digest:
        if not self._packing:
            return self._store.put_file(path, progress, durable=self._durable)
        src, size = _open_regular(path)
        with src:
            if size >= PACK_MAX_BLOB:
                return self._store.put_stream(src, progress, durable=self._durable, size_hint=size)
            return self._pack(src, size, progress)

    def _pack(self, src: BinaryIO, size: int, progress: Progress | None) -> Digest:
        thread = threading.get_ident()
        pack = self._packs.get(thread)
        if pack is None:
            with self._lock:
                pack = self._packs[thread] = self._store.backend.new_pack()
        hasher = _hasher(size)
        try:
            for chunk in _chunks(src):
                hasher.update(chunk)
                pack.write(chunk)
                if progress is not None:
                    progress(len(chunk))
        except BaseException:
            pack.undo()
            raise
        digest = Digest(hasher.hexdigest())
        key = _key(digest)
        # Stored already (by this batch or before it): keep one copy. Two threads packing the
        # same new content at once may both keep it, which costs bytes, not correctness.
        if digest in self._packed or self._store.backend.probably_exists(key):
            pack.undo()
        else:
            pack.add(key)
            self._packed.add(digest)
            if pack.size >= PACK_TARGET_SIZE:
                pack.publish(durable=self._durable)
                del self._packs[thread]
        return digest

    def commit(self) -> None:
        """Publish every pack: their blobs become readable."""
        while self._packs:
            _, pack = self._packs.popitem()
            pack.publish(durable=self._durable)

    def abort(self) -> None:
        while self._packs:
            _, pack = self._packs.popitem()
            pack.discard()

    def __enter__(self) -> BlobBatch:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class BlobStore:
    """Content-addressed, deduplicated, verified blob storage over any :class:`BlobBackend`."""

    def __init__(self, backend: BlobBackend) -> None:
        self.backend = backend

    @property
    def uri(self) -> str:
        return self.backend.uri

    # -- writing ---------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> Digest:
        return self.put_stream(io.BytesIO(data))

    def put_stream(
        self,
        src: BinaryIO,
        progress: Progress | None = None,
        *,
        durable: bool = True,
        size_hint: int | None = None,
    ) -> Digest:
        """Store everything ``src`` yields, reading it in chunks (memory stays flat).
        ``progress`` is called with the byte count of each chunk. ``durable=False`` skips the
        fsync (see :meth:`Staged.publish`): for bulk writes, such as adding a dataset, where a
        per-file fsync would cost more than everything else together."""
        hasher = _hasher(size_hint)
        staged = self.backend.stage()
        try:
            for chunk in _chunks(src):
                hasher.update(chunk)
                staged.file.write(chunk)
                if progress is not None:
                    progress(len(chunk))
            digest = Digest(hasher.hexdigest())
            staged.publish(_key(digest), durable=durable)
        except BaseException:
            staged.discard()
            raise
        return digest

    def put_file(
        self,
        path: str | os.PathLike[str],
        progress: Progress | None = None,
        *,
        durable: bool = True,
    ) -> Digest:
        """Store one file. Local backends read it once (hash while copying); remote ones hash
        it in place, then upload it only if that content is not stored already."""
        source = Path(path)
        src, size = _open_regular(source)
        with src:
            if self.backend.upload_from_path:
                digest = self._hash_stream(src, progress, size)
                key = _key(digest)
                if not self.backend.exists(key):
                    self.backend.publish_path(source, key)
                return digest
            return self.put_stream(src, progress, durable=durable, size_hint=size)

    def batch(self, *, durable: bool = False) -> BlobBatch:
        """A :class:`BlobBatch` for storing many files as one unit (small ones packed)."""
        return BlobBatch(self, durable=durable)

    @staticmethod
    def hash_file(path: str | os.PathLike[str], progress: Progress | None = None) -> Digest:
        with open(path, "rb", buffering=0) as src:
            return BlobStore._hash_stream(src, progress, os.fstat(src.fileno()).st_size)

    @staticmethod
    def _hash_stream(src: BinaryIO, progress: Progress | None, size: int | None) -> Digest:
        hasher = _hasher(size)
        for chunk in _chunks(src):
            hasher.update(chunk)
            if progress is not None:
                progress(len(chunk))
        return Digest(hasher.hexdigest())

    def put_dir(self, path: str | os.PathLike[str], progress: Progress | None = None) -> Digest:
        """Store every regular file under ``path`` and a manifest listing them; returns the
        manifest's digest. Symlinked files are stored by content; symlinked directories are
        not followed (they could loop or leave the tree)."""
        root = Path(path)
        if not root.is_dir():
            raise NotFound(f"directory {root} does not exist")
        entries = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                if not full.is_file():
                    continue  # sockets, dangling links
                rel = full.relative_to(root).as_posix()
                mode = full.stat().st_mode
                entries.append(
                    ManifestEntry(
                        path=safe_relpath(rel, "file path"),
                        digest=self.put_file(full, progress),
                        size=full.stat().st_size,
                        executable=bool(mode & stat.S_IXUSR),
                    )
                )
        entries.sort(key=lambda e: e.path)
        return self.put_bytes(Manifest(tuple(entries)).to_bytes())

    # -- reading ---------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        return self.backend.exists(_key(check_digest(digest)))

    def stat(self, digest: str) -> StoredObject:
        return self.backend.stat(_key(check_digest(digest)))

    def open(self, digest: str, *, verify: bool = True) -> BinaryIO:
        """A buffered streaming reader that raises IntegrityError at the end if the bytes do not
        hash to ``digest``. Raises NotFound if there is no such blob. ``verify=False`` is for
        relaying bytes to a reader that checks them itself against the digest (a server
        streaming to a client that verifies): a mismatch is then reported where it can be
        acted on, instead of as a connection cut mid-stream."""
        d = check_digest(digest)
        raw = self.backend.open_read(_key(d))
        if not verify:
            return io.BufferedReader(raw, buffer_size=CHUNK_SIZE)  # type: ignore[arg-type]
        return io.BufferedReader(VerifyingReader(raw, d), buffer_size=CHUNK_SIZE)

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as fh:
            return fh.read()

    def get_to_path(
        self, digest: str, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> Path:
        """Write the blob to ``dest`` atomically and only if it verifies: on a mismatch ``dest``
        is left as it was."""
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.loopline-tmp-{os.getpid()}")
        try:
            with self.open(digest) as src, tmp.open("wb") as out:
                for chunk in iter(lambda: src.read(CHUNK_SIZE), b""):
                    out.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
                out.flush()
                os.fsync(out.fileno())  # complete on disk before it takes the real name
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def verify(self, digest: str, progress: Progress | None = None) -> bool:
        """Read the whole blob; True if it is intact, False if corrupt. NotFound if missing."""
        try:
            with self.open(digest) as fh:
                while chunk := fh.read(CHUNK_SIZE):
                    if progress is not None:
                        progress(len(chunk))
        except IntegrityError:
            return False
        return True

    def read_manifest(self, digest: str) -> Manifest:
        return Manifest.from_bytes(self.read_bytes(digest), digest)

    def manifest_digests(self, digest: str) -> set[Digest]:
        """The distinct blob digests a manifest lists, each checked, without building its
        entries: a re-add needs only these, and validating 20,000 paths it will not use cost
        more than the rest of the re-add's bookkeeping."""
        return Manifest.digests_in(self.read_bytes(digest), digest)

    def get_dir(
        self, digest: str, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> Path:
        """Restore a directory stored by :meth:`put_dir` into ``dest``. Paths in the manifest
        are checked again here: a crafted manifest cannot write outside ``dest``."""
        root = Path(dest)
        root.mkdir(parents=True, exist_ok=True)
        for entry in self.read_manifest(digest).entries:
            target = join_inside(root, entry.path, "manifest path")
            self.get_to_path(entry.digest, target, progress)
            if entry.executable:
                target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return root

    # -- maintenance -----------------------------------------------------------------------
    def delete(self, digest: str) -> bool:
        return self.backend.delete(_key(check_digest(digest)))

    def delete_many(self, digests: Iterable[str]) -> int:
        """Delete several blobs at once (each pack they share is rewritten once); returns how
        many were stored."""
        return self.backend.delete_many([_key(check_digest(d)) for d in digests])

    def iter_digests(self) -> Iterator[Digest]:
        for obj in self.iter_stored():
            yield Digest(obj.key.replace("/", ""))

    def iter_stored(self) -> Iterator[StoredObject]:
        """Every stored blob with size and write time; keys not shaped like digests (foreign
        files dropped into the directory) are skipped, never deleted."""
        for obj in self.backend.iter_objects():
            if _DIGEST.match(obj.key.replace("/", "")):
                yield obj
