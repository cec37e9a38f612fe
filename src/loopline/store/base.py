"""The metadata store contract. Every backend implements all of it; the contract suite in
``tests/contract`` runs the same tests against each.

Conventions, stated once:

- ``get_*`` returns the object or raises :class:`~loopline.errors.NotFound`, never ``None``.
- ``create_*``/``add_*`` of something that exists raises
  :class:`~loopline.errors.AlreadyExists`, unless the method says it is idempotent.
- Every write is one transaction: it happens whole or not at all, also when the process dies.
- Times are integer milliseconds since the epoch, UTC.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from typing import ClassVar, Literal

from loopline.entities import BlobRef, Event, LineageEdge, NewEvent, Ref

__all__ = ["MetadataStore"]


class MetadataStore(abc.ABC):
    """Durable metadata: workspace facts, the append-only event log, lineage, blob references."""

    capabilities: ClassVar[frozenset[str]] = frozenset()
    """Optional behaviours a backend has (``"multi_process"``, ``"schemas"``, ...). Tests skip on
    these, never on the concrete class."""

    uri: str

    # -- schema ----------------------------------------------------------------------------
    @abc.abstractmethod
    def schema_revision(self) -> str | None:
        """The applied migration revision, ``None`` for an empty database."""

    @abc.abstractmethod
    def latest_revision(self) -> str:
        """The newest migration revision this version of Loopline ships."""

    @abc.abstractmethod
    def upgrade(self) -> str:
        """Apply pending migrations and return the new revision. Safe when several processes
        call it on the same database at once: one migrates, the others wait and find it done."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store must not be used afterwards."""

    # -- workspace facts -------------------------------------------------------------------
    @abc.abstractmethod
    def get_meta(self, key: str) -> str:
        """Raises NotFound if ``key`` was never set."""

    @abc.abstractmethod
    def set_meta(self, key: str, value: str, *, overwrite: bool = True) -> str:
        """Store ``value`` under ``key`` and return what is stored afterwards. With
        ``overwrite=False`` an existing value wins, atomically, so racing processes agree."""

    # -- events ----------------------------------------------------------------------------
    @abc.abstractmethod
    def append_events(self, events: Iterable[NewEvent]) -> int:
        """Append all ``events`` in one transaction and return how many. ``events`` is consumed
        lazily in chunks, so a large or slow iterator is not held in memory; if it raises (or the
        process dies) part-way, nothing from this call is stored."""

    @abc.abstractmethod
    def list_events(
        self,
        *,
        object_kind: str | None = None,
        object_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[Event]:
        """Events matching every given filter, ordered by id (append order). ``after_id`` pages
        forward; ``limit`` is capped at 10,000."""

    @abc.abstractmethod
    def count_events(
        self,
        *,
        object_kind: str | None = None,
        object_id: str | None = None,
        action: str | None = None,
    ) -> int:
        """How many events match."""

    # -- lineage ---------------------------------------------------------------------------
    @abc.abstractmethod
    def add_link(self, source: Ref, target: Ref, relation: str) -> bool:
        """Record that ``source`` flowed into ``target``. Idempotent: returns False if this exact
        edge already existed."""

    @abc.abstractmethod
    def walk_lineage(
        self, ref: Ref, direction: Literal["upstream", "downstream"], max_depth: int
    ) -> list[LineageEdge]:
        """Every edge reachable from ``ref`` against (upstream) or along (downstream) the flow,
        up to ``max_depth`` hops, each once with its smallest depth. Cycles terminate."""

    # -- blob references -------------------------------------------------------------------
    @abc.abstractmethod
    def add_blob_refs(self, refs: Iterable[BlobRef]) -> None:
        """Mark blobs as referenced by an owner. Idempotent per (digest, owner)."""

    @abc.abstractmethod
    def remove_blob_refs(self, owner: Ref) -> int:
        """Drop every reference held by ``owner``; returns how many."""

    @abc.abstractmethod
    def iter_blob_refs(self) -> Iterator[tuple[str, str]]:
        """Stream ``(digest, kind)`` of every referenced blob, for garbage collection."""
