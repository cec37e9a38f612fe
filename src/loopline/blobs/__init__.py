"""Content-addressed blob storage (BLAKE3) over local directories and S3."""

from loopline.blobs.base import BlobBackend, StoredObject
from loopline.blobs.cas import BlobStore, Digest, Manifest, ManifestEntry, hash_bytes
from loopline.blobs.gc import GcReport, collect

__all__ = [
    "BlobBackend",
    "BlobStore",
    "Digest",
    "GcReport",
    "Manifest",
    "ManifestEntry",
    "StoredObject",
    "collect",
    "hash_bytes",
]
