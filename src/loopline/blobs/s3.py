"""Blobs in any S3-compatible store through s3fs: ``s3://bucket/prefix/ab/cdef...``.

S3 makes an object visible only when its single PUT or multipart upload completes, so an upload
cut short leaves nothing under the key. Streams of unknown content are spooled to a local temp
file while hashed (their key is their digest, known only at the end), then uploaded; files already
on disk are hashed in place and uploaded directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from loopline.blobs.base import BlobBackend, Staged, StoredObject
from loopline.errors import ConfigError, NotFound, PermissionDenied, StoreUnavailable

__all__ = ["S3Backend"]

READ_BLOCK = 8 * 1024 * 1024
UPLOAD_PART = 8 * 1024 * 1024
UPLOAD_CONCURRENCY = 4  # parts in flight: bounds upload memory to ~32 MiB
_BLOB_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{62}$")
SPOOL_DIR = Path(tempfile.gettempdir()) / "loopline-spool"


class _SpoolStaged(Staged):
    def __init__(self, backend: S3Backend) -> None:
        self._backend = backend
        backend.spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=backend.spool_dir, prefix="put-")
        self._path = Path(name)
        self.file = os.fdopen(fd, "wb")

    def publish(self, key: str, *, durable: bool = True) -> None:
        self.file.close()
        try:
            self._backend.publish_path(self._path, key)
        finally:
            self._path.unlink(missing_ok=True)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        self._path.unlink(missing_ok=True)


class S3Backend(BlobBackend):
    upload_from_path: ClassVar[bool] = True

    def __init__(
        self,
        uri: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        key: str | None = None,
        secret: str | None = None,
    ) -> None:
        try:
            import s3fs
        except ImportError as exc:
            raise ConfigError(
                "S3 support is not installed; run: pip install 'loopline[s3]'"
            ) from exc
        rest = uri[len("s3://") :].strip("/")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ConfigError(f"artifact URI {uri!r} names no bucket; use s3://bucket[/prefix]")
        self.uri = uri
        self.bucket = bucket
        self.root = f"{bucket}/{prefix}".rstrip("/")
        client_kwargs: dict[str, Any] = {}
        if endpoint_url:
            client_kwargs["endpoint_url"] = endpoint_url
        if region:
            client_kwargs["region_name"] = region
        self.fs = s3fs.S3FileSystem(
            key=key,
            secret=secret,
            client_kwargs=client_kwargs,
            skip_instance_cache=True,
            use_listings_cache=False,
        )
        self._check_bucket(endpoint_url or "AWS")

    def _check_bucket(self, where: str) -> None:
        """One HEAD request that tells a missing bucket from bad credentials (s3fs's exists()
        answers False for both)."""
        try:
            self.fs.call_s3("head_bucket", Bucket=self.bucket)
        except FileNotFoundError:
            raise ConfigError(
                f"S3 bucket {self.bucket!r} does not exist at {where}; create it first"
            ) from None
        except PermissionError as exc:
            raise PermissionDenied(
                f"access to S3 bucket {self.bucket!r} at {where} was denied ({exc}); check the "
                "credentials (LOOPLINE_S3_ACCESS_KEY_ID / LOOPLINE_S3_SECRET_ACCESS_KEY or the "
                "AWS_* variables)"
            ) from None
        except Exception as exc:  # botocore raises a zoo of connection errors
            raise StoreUnavailable(
                f"cannot reach S3 at {where} for {self.uri}: {exc}; check the endpoint "
                "(LOOPLINE_S3_ENDPOINT_URL) and credentials"
            ) from exc

    def _full(self, key: str) -> str:
        return f"{self.root}/{key}"

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._full(key)))

    def stat(self, key: str) -> StoredObject:
        try:
            info = self.fs.info(self._full(key))
        except FileNotFoundError:
            raise NotFound(f"blob {key.replace('/', '')} not found in {self.uri}") from None
        return StoredObject(key, int(info["size"]), _mtime(info))

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self.fs.open(self._full(key), "rb", block_size=READ_BLOCK, cache_type="none")
        except FileNotFoundError:
            raise NotFound(f"blob {key.replace('/', '')} not found in {self.uri}") from None

    def stage(self) -> Staged:
        return _SpoolStaged(self)

    def publish_path(self, path: Path, key: str) -> None:
        if self.exists(key):
            return
        # s3fs holds every in-flight part in memory: cap part size x concurrency, while keeping
        # under S3's 10,000-part limit for very large files.
        part = max(UPLOAD_PART, -(-path.stat().st_size // 10_000))
        self.fs.put_file(
            str(path), self._full(key), chunksize=part, max_concurrency=UPLOAD_CONCURRENCY
        )

    def delete(self, key: str) -> bool:
        # S3 DELETE succeeds on a missing key, so ask first to report truthfully.
        if not self.exists(key):
            return False
        self.fs.rm_file(self._full(key))
        return True

    def iter_objects(self) -> Iterator[StoredObject]:
        for path, info in self.fs.find(self.root, detail=True).items():
            key = path[len(self.root) + 1 :]
            fan, _, rest = key.partition("/")
            if len(fan) == 2 and rest and "/" not in rest:
                yield StoredObject(key, int(info["size"]), _mtime(info))

    @property
    def spool_dir(self) -> Path:
        """Local spool for streams of this bucket/prefix only, so one store's GC never removes
        another store's in-flight spool files."""
        return SPOOL_DIR / hashlib.sha256(self.uri.encode()).hexdigest()[:16]

    def _stale_uploads(self, older_than: float) -> Iterator[dict[str, Any]]:
        """Unfinished multipart uploads of our own blob keys, every page of them."""
        prefix = self.root.partition("/")[2]
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{prefix}/" if prefix else ""}
        while True:
            listing = self.fs.call_s3("list_multipart_uploads", **request)
            for upload in listing.get("Uploads", []):
                key = upload["Key"][len(prefix) + 1 :] if prefix else upload["Key"]
                if _BLOB_KEY.match(key) and upload["Initiated"].timestamp() < older_than:
                    yield upload
            if not listing.get("IsTruncated"):
                return
            request["KeyMarker"] = listing.get("NextKeyMarker", "")
            request["UploadIdMarker"] = listing.get("NextUploadIdMarker", "")

    def clean_staging(self, older_than: float) -> int:
        removed = 0
        if self.spool_dir.is_dir():
            for entry in self.spool_dir.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < older_than:
                        entry.unlink()
                        removed += 1
        # Multipart uploads a killed process never completed: invisible, but they cost storage.
        for upload in self._stale_uploads(older_than):
            self.fs.call_s3(
                "abort_multipart_upload",
                Bucket=self.bucket,
                Key=upload["Key"],
                UploadId=upload["UploadId"],
            )
            removed += 1
        return removed


def _mtime(info: dict[str, Any]) -> float:
    modified = info.get("LastModified") or info.get("last_modified")
    if modified is None:
        return time.time()
    return float(modified.timestamp())
