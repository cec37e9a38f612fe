"""The append-only event log: who did what to which object, when.

One table serves the audit log, the UI timeline and delivery metrics, so every service records
its state changes here through :meth:`EventLog.record` rather than keeping a log of its own.
"""

from __future__ import annotations

from typing import Any

from loopline.entities import Event, NewEvent
from loopline.store.base import MetadataStore

__all__ = ["EventLog"]


class EventLog:
    def __init__(self, store: MetadataStore, default_actor: str) -> None:
        self._store = store
        self.default_actor = default_actor

    def record(
        self,
        actor: str | None,
        action: str,
        object_kind: str,
        object_id: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append one event; ``actor=None`` means this process's configured actor."""
        self._store.append_events(
            [
                NewEvent(
                    actor=actor or self.default_actor,
                    action=action,
                    object_kind=object_kind,
                    object_id=object_id,
                    details=dict(details or {}),
                )
            ]
        )

    def list(
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
        return self._store.list_events(
            object_kind=object_kind,
            object_id=object_id,
            action=action,
            actor=actor,
            after_id=after_id,
            limit=limit,
            newest_first=newest_first,
        )
