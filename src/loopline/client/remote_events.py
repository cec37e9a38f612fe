"""The event log and lineage graph of a remote server, with the local classes' interfaces."""

from __future__ import annotations

from typing import Any

from loopline.client.http import HttpTransport
from loopline.entities import Event, LineageEdge, Ref, RefLike, as_ref

__all__ = ["RemoteEventLog", "RemoteLineage"]


def _edge(d: dict[str, Any]) -> LineageEdge:
    return LineageEdge(Ref(**d["source"]), Ref(**d["target"]), d["relation"], d.get("depth", 1))


class RemoteEventLog:
    def __init__(self, transport: HttpTransport, default_actor: str) -> None:
        self.http = transport
        self.default_actor = default_actor

    def record(
        self,
        actor: str | None,
        action: str,
        object_kind: str,
        object_id: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        body = {
            "actor": actor or self.default_actor,
            "action": action,
            "object_kind": object_kind,
            "object_id": object_id,
            "details": dict(details or {}),
        }
        self.http.call("POST", "/api/v1/events", body)

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
        params = {
            "object_kind": object_kind,
            "object_id": object_id,
            "action": action,
            "actor": actor,
            "after_id": after_id,
            "max_results": limit,
            "newest_first": str(newest_first).lower(),
        }
        answer = self.http.call("GET", "/api/v1/events", params=params)
        return [Event(**e) for e in answer["events"]]


class RemoteLineage:
    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def link(self, source: RefLike, target: RefLike, relation: str) -> bool:
        src, dst = as_ref(source), as_ref(target)
        body = {
            "source": {"kind": src.kind, "id": src.id},
            "target": {"kind": dst.kind, "id": dst.id},
            "relation": relation,
        }
        return bool(self.http.call("POST", "/api/v1/lineage", body)["created"])

    def _walk(self, direction: str, obj: RefLike, max_depth: int) -> list[LineageEdge]:
        ref = as_ref(obj)
        params = {"kind": ref.kind, "id": ref.id, "max_depth": max_depth}
        answer = self.http.call("GET", f"/api/v1/lineage/{direction}", params=params)
        return [_edge(e) for e in answer["edges"]]

    def upstream(self, obj: RefLike, max_depth: int = 50) -> list[LineageEdge]:
        return self._walk("upstream", obj, max_depth)

    def downstream(self, obj: RefLike, max_depth: int = 50) -> list[LineageEdge]:
        return self._walk("downstream", obj, max_depth)

    def upstream_objects(self, obj: RefLike, max_depth: int = 50) -> list[Ref]:
        return list(dict.fromkeys(e.source for e in self.upstream(obj, max_depth)))

    def downstream_objects(self, obj: RefLike, max_depth: int = 50) -> list[Ref]:
        return list(dict.fromkeys(e.target for e in self.downstream(obj, max_depth)))
