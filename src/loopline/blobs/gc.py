"""Garbage collection: delete blobs that no metadata row references.

Marking comes from the metadata store (``blob_refs``); a referenced manifest keeps the files it
lists alive. Packed blobs (local stores) are swept like loose ones: each pack holding a dead blob
is rewritten once with its other blobs, then removed (see ``LocalBackend.delete_many``), so the
space is reclaimed and no live blob is ever without a copy. Sweeping spares anything younger
than the grace period, because a writer uploads a blob *before* it commits the row that
references it, and that window must not be a data loss.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from loopline.blobs.cas import BlobStore
from loopline.errors import IntegrityError, NotFound

__all__ = ["GcReport", "collect"]


@dataclass
class GcReport:
    dry_run: bool
    live: int = 0
    """Blobs kept because something references them."""
    young: int = 0
    """Unreferenced blobs kept because they are inside the grace period."""
    deleted: int = 0
    deleted_bytes: int = 0
    staging_cleaned: int = 0
    purged_runs: list[str] = field(default_factory=list)
    """Soft-deleted runs removed for good (or, in a dry run, that would be)."""
    missing: list[str] = field(default_factory=list)
    """Referenced digests with no stored blob: a metadata row points at lost data."""


def collect(
    blobs: BlobStore,
    references: Iterable[tuple[str, str]],
    *,
    grace_seconds: float,
    dry_run: bool = False,
    now: float | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> GcReport:
    """``references`` yields ``(digest, kind)`` with kind ``file`` or ``manifest``."""
    now = time.time() if now is None else now
    cutoff = now - grace_seconds
    report = GcReport(dry_run=dry_run)

    live: set[str] = set()
    for digest, kind in references:
        live.add(digest)
        if kind == "manifest":
            # A missing or corrupt manifest is reported as missing below.
            with contextlib.suppress(NotFound, IntegrityError):
                live.update(e.digest for e in blobs.read_manifest(digest).entries)
    seen: set[str] = set()
    dead: list[str] = []
    for count, obj in enumerate(blobs.iter_stored(), 1):
        digest = obj.key.replace("/", "")
        if digest in live:
            report.live += 1
            seen.add(digest)
        elif obj.mtime >= cutoff:
            report.young += 1
        else:
            dead.append(obj.key)
            report.deleted += 1
            report.deleted_bytes += obj.size
        if on_progress is not None:
            on_progress(count)
    if dead and not dry_run:
        # All at once: a pack holding dead blobs is rewritten once, keeping its live ones.
        blobs.backend.delete_many(dead)

    report.missing = sorted(live - seen)
    if not dry_run:
        report.staging_cleaned = blobs.backend.clean_staging(cutoff)
    return report
