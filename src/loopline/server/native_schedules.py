"""Schedules over the native REST API (``/api/v1/schedules``): list them, read their fires,
and trigger one by an API call.

A triggered fire is recorded here and launched by the running ``loopline scheduler`` on its
next tick (the server never runs pipelines itself: it stays stateless and quick). The
``request_id`` a client sends makes a retried call record one fire, not two. Schedules are
workspace-wide, so every route needs an admin when the server runs with ``--auth``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from loopline.pipelines.schedule_entities import Fire, Schedule
from loopline.server.context import RequestContext, request_context

if TYPE_CHECKING:
    from loopline.pipelines.scheduler import Scheduler

__all__ = ["FiresOut", "SchedulesOut", "TriggerBody", "router"]

router = APIRouter(prefix="/api/v1", tags=["schedules"])
Ctx = Annotated[RequestContext, Depends(request_context)]
_ERRORS = {
    400: {"description": "Invalid input; body names the field: {error_code, message}"},
    401: {"description": "Credentials missing or invalid (auth on)"},
    403: {"description": "Not an admin (auth on)"},
    404: {"description": "No such schedule"},
}


class SchedulesOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    schedules: list[Schedule]


class FiresOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    fires: list[Fire]


class TriggerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, str] = Field(default_factory=dict)
    request_id: str | None = Field(
        default=None,
        max_length=200,
        description="the same id records one fire however often the call is retried",
    )


def _scheduler(ctx: RequestContext) -> Scheduler:
    from loopline.pipelines.scheduler import Scheduler

    ctx.require_admin()
    return Scheduler(ctx.workspace)


@router.get("/schedules", response_model=SchedulesOut, responses=_ERRORS)
def list_schedules(ctx: Ctx) -> SchedulesOut:
    return SchedulesOut(schedules=_scheduler(ctx).list())


@router.get("/schedules/{name}/fires", response_model=FiresOut, responses=_ERRORS)
def schedule_fires(
    name: str, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> FiresOut:
    """The schedule's fires, newest first."""
    return FiresOut(fires=_scheduler(ctx).history(name, limit=limit))


@router.post("/schedules/{name}/trigger", response_model=Fire, responses=_ERRORS)
def trigger_schedule(name: str, body: TriggerBody, ctx: Ctx) -> Fire:
    """Record a manual fire (``params`` over the schedule's own), launched by the running
    scheduler; answers with the fire, ``pending`` until then."""
    scheduler = _scheduler(ctx)
    ctx.audit_object("schedule", name)
    return scheduler.trigger(name, body.params, request_id=body.request_id, wait=False)
