"""Events and lineage over HTTP (``/api/v1/events``, ``/api/v1/lineage``), so ``ll.record_event``
and ``ll.link`` reach the server's stores when the client is remote.

With auth on, recording and linking need any valid credentials (the actor recorded is the caller,
never a name the body claims); reading the event log, which holds the audit trail, needs an admin.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from loopline.entities import Event, LineageEdge, Ref
from loopline.server.context import RequestContext, page_size, request_context

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["events and lineage"])
Ctx = Annotated[RequestContext, Depends(request_context)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid input: {error_code, message}"},
    401: {"description": "Credentials missing or invalid (auth on)"},
    403: {"description": "Reading events needs an admin (auth on)"},
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefBody(_Body):
    kind: str = Field(min_length=1, max_length=64)
    id: str = Field(min_length=1, max_length=256)


class EventBody(_Body):
    action: str = Field(min_length=1, max_length=128)
    object_kind: str = Field(min_length=1, max_length=64)
    object_id: str = Field(min_length=1, max_length=256)
    details: dict[str, Any] = Field(default_factory=dict)
    actor: str | None = Field(
        default=None, max_length=256, description="Ignored when auth is on: the caller is the actor"
    )


class LinkBody(_Body):
    source: RefBody
    target: RefBody
    relation: str = Field(min_length=1, max_length=64)


class EventsPage(BaseModel):
    events: list[Event]
    next_after_id: int | None = Field(
        default=None, description="Pass as after_id for the next page (oldest-first order only)"
    )


class EdgesOut(BaseModel):
    edges: list[LineageEdge]


class LinkedOut(BaseModel):
    created: bool


@router.post("/events", response_model=Event | None, responses=_ERRORS)
def record_event(body: EventBody, ctx: Ctx) -> None:
    actor = ctx.actor if ctx.principal is not None else (body.actor or ctx.actor)
    ctx.audit_object(body.object_kind, body.object_id)
    ctx.workspace.events.record(actor, body.action, body.object_kind, body.object_id, body.details)


@router.get("/events", response_model=EventsPage, responses=_ERRORS)
def list_events(
    ctx: Ctx,
    object_kind: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    max_results: Annotated[int | None, Query(ge=1)] = None,
    newest_first: bool = False,
) -> EventsPage:
    ctx.require_admin()
    size = page_size(max_results, 100, ctx.state)
    events = ctx.workspace.events.list(
        object_kind=object_kind,
        object_id=object_id,
        action=action,
        actor=actor,
        after_id=after_id,
        limit=size,
        newest_first=newest_first,
    )
    more = len(events) == size and not newest_first
    return EventsPage(events=events, next_after_id=events[-1].id if more else None)


@router.post("/lineage", response_model=LinkedOut, responses=_ERRORS)
def link(body: LinkBody, ctx: Ctx) -> LinkedOut:
    ctx.audit_object(body.target.kind, body.target.id)
    created = ctx.workspace.lineage.link(
        Ref(body.source.kind, body.source.id), Ref(body.target.kind, body.target.id), body.relation
    )
    return LinkedOut(created=created)


@router.get("/lineage/{direction}", response_model=EdgesOut, responses=_ERRORS)
def walk(
    direction: str,
    kind: str,
    id: str,
    ctx: Ctx,
    max_depth: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> EdgesOut:
    from loopline.errors import InvalidInput

    if direction not in ("upstream", "downstream"):
        raise InvalidInput(f"lineage direction {direction!r} is not upstream or downstream")
    graph = ctx.workspace.lineage
    walker = graph.upstream if direction == "upstream" else graph.downstream
    return EdgesOut(edges=walker(Ref(kind, id), max_depth))
