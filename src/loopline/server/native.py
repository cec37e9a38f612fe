"""Loopline's native REST API under ``/api/v1``: everything the tracking Python API does.

Routes are thin: authorize, call the service, shape the answer. The remote client
(:mod:`loopline.client.remote`) is this API's other half.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from loopline.access import Role
from loopline.errors import InvalidInput, NotFound
from loopline.paging import slice_page
from loopline.paths import safe_relpath
from loopline.server.bodies import RequestBodyReader, iter_file
from loopline.server.context import RequestContext, page_size, request_context
from loopline.server.schemas import (
    INT64_MAX,
    ArtifactFilesPage,
    ArtifactsPage,
    BatchBody,
    CreateExperimentBody,
    CreateRunBody,
    ExperimentIdOut,
    ExperimentsPage,
    MetricHistoryPage,
    MetricOut,
    NameBody,
    PurgeBody,
    RunIdsOut,
    RunOut,
    RunsPage,
    SearchRunsBody,
    TagValueBody,
    UpdateRunBody,
)
from loopline.tracking.entities import Experiment, Metric, RunInfo, ViewType
from loopline.tracking.store import ArtifactRow
from loopline.tracking.validation import make_metric

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["tracking"])
Ctx = Annotated[RequestContext, Depends(request_context)]
_ERRORS = {
    400: {"description": "Invalid input; body names the field: {error_code, message}"},
    401: {"description": "Credentials missing or invalid (auth on)"},
    403: {"description": "The caller lacks the role this needs"},
    404: {"description": "No such object"},
}


# -- experiments ----------------------------------------------------------------------------------
@router.get("/experiments", response_model=ExperimentsPage, responses=_ERRORS)
def list_experiments(
    ctx: Ctx,
    view: ViewType = ViewType.ACTIVE_ONLY,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    max_results: Annotated[int | None, Query(ge=1)] = None,
    page_token: str | None = None,
) -> ExperimentsPage:
    """Experiments matching ``filter`` (``name LIKE 'fraud%' AND tags.team = 'risk'``); with
    auth on, only those the caller holds a role on (a page may then hold fewer)."""
    experiments, token = ctx.tracking.search_experiments(
        view, page_size(max_results, 1000, ctx.state), filter, order_by, page_token
    )
    allowed = ctx.readable("experiment")
    if allowed is not None:
        experiments = [e for e in experiments if e.experiment_id in allowed]
    return ExperimentsPage(experiments=experiments, next_page_token=token)


@router.post("/experiments", response_model=ExperimentIdOut, responses=_ERRORS)
def create_experiment(body: CreateExperimentBody, ctx: Ctx) -> ExperimentIdOut:
    experiment_id = ctx.tracking.create_experiment(body.name, body.artifact_location, body.tags)
    ctx.became_owner("experiment", experiment_id)
    ctx.audit_object("experiment", experiment_id)
    return ExperimentIdOut(experiment_id=experiment_id)


@router.get("/experiments/by-name", response_model=Experiment, responses=_ERRORS)
def get_experiment_by_name(name: str, ctx: Ctx) -> Experiment:
    experiment = ctx.tracking.get_experiment_by_name(name)
    ctx.require_experiment(experiment.experiment_id, Role.READER)
    return experiment


@router.post("/experiments/get-or-create", response_model=Experiment, responses=_ERRORS)
def get_or_create_experiment(body: NameBody, ctx: Ctx) -> Experiment:
    experiment = ctx.tracking.get_or_create_experiment(body.name)
    ctx.audit_object("experiment", experiment.experiment_id)
    if ctx.principal is not None and not ctx.access.list_grants(
        object_kind="experiment", object_id=experiment.experiment_id
    ):
        ctx.became_owner("experiment", experiment.experiment_id)
    ctx.require_experiment(experiment.experiment_id, Role.READER)
    return experiment


@router.get("/experiments/{experiment_id}", response_model=Experiment, responses=_ERRORS)
def get_experiment(experiment_id: str, ctx: Ctx) -> Experiment:
    ctx.require_experiment(experiment_id, Role.READER)
    return ctx.tracking.get_experiment(experiment_id)


@router.patch("/experiments/{experiment_id}", response_model=Experiment, responses=_ERRORS)
def rename_experiment(experiment_id: str, body: NameBody, ctx: Ctx) -> Experiment:
    ctx.require_experiment(experiment_id, Role.EDITOR)
    ctx.audit_object("experiment", experiment_id)
    ctx.tracking.rename_experiment(experiment_id, body.name)
    return ctx.tracking.get_experiment(experiment_id)


@router.post("/experiments/{experiment_id}/delete", response_model=Experiment, responses=_ERRORS)
def delete_experiment(experiment_id: str, ctx: Ctx) -> Experiment:
    ctx.require_experiment(experiment_id, Role.ADMIN)
    ctx.audit_object("experiment", experiment_id)
    ctx.tracking.delete_experiment(experiment_id)
    return ctx.tracking.get_experiment(experiment_id)


@router.post("/experiments/{experiment_id}/restore", response_model=Experiment, responses=_ERRORS)
def restore_experiment(experiment_id: str, ctx: Ctx) -> Experiment:
    ctx.require_experiment(experiment_id, Role.ADMIN)
    ctx.audit_object("experiment", experiment_id)
    ctx.tracking.restore_experiment(experiment_id)
    return ctx.tracking.get_experiment(experiment_id)


@router.put(
    "/experiments/{experiment_id}/tags/{key:path}", response_model=Experiment, responses=_ERRORS
)
def set_experiment_tag(experiment_id: str, key: str, body: TagValueBody, ctx: Ctx) -> Experiment:
    ctx.require_experiment(experiment_id, Role.EDITOR)
    ctx.audit_object("experiment", experiment_id)
    ctx.tracking.set_experiment_tag(experiment_id, key, body.value)
    return ctx.tracking.get_experiment(experiment_id)


# -- runs -----------------------------------------------------------------------------------------
@router.post("/runs", response_model=RunOut, responses=_ERRORS)
def create_run(body: CreateRunBody, ctx: Ctx) -> object:
    ctx.require_experiment(body.experiment_id, Role.EDITOR)
    if body.parent_run_id is not None:
        ctx.require_run(body.parent_run_id, Role.READER)
    run = ctx.tracking.create_run(
        body.experiment_id,
        run_name=body.run_name,
        tags=body.tags,
        start_time=body.start_time,
        parent_run_id=body.parent_run_id,
        user_id=body.user_id if ctx.principal is None else ctx.principal.name,
    )
    ctx.audit_object("run", run.info.run_id)
    return run


@router.post("/runs/search", response_model=RunsPage, responses=_ERRORS)
def search_runs(body: SearchRunsBody, ctx: Ctx) -> RunsPage:
    ids = list(body.experiment_ids)
    for name in body.experiment_names:
        ids.append(ctx.tracking.get_experiment_by_name(name).experiment_id)
    for experiment_id in ids or ["0"]:
        ctx.require_experiment(experiment_id, Role.READER)
    runs, token = ctx.tracking.search_runs(
        ids or None,
        body.filter,
        body.order_by,
        page_size(body.max_results, 1000, ctx.state),
        body.view,
        body.page_token,
    )
    return RunsPage(runs=runs, next_page_token=token)  # type: ignore[arg-type]


@router.get("/runs/deleted", response_model=RunIdsOut, responses=_ERRORS)
def deleted_runs(
    ctx: Ctx, older_than_ms: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0
) -> RunIdsOut:
    ctx.require_admin()
    return RunIdsOut(run_ids=ctx.tracking.deleted_run_ids(older_than_ms))


@router.post("/runs/purge", response_model=RunIdsOut, responses=_ERRORS)
def purge_runs(body: PurgeBody, ctx: Ctx) -> RunIdsOut:
    ctx.require_admin()
    return RunIdsOut(run_ids=ctx.tracking.purge_deleted_runs(body.older_than_ms))


@router.get("/runs/{run_id}", response_model=RunOut, responses=_ERRORS)
def get_run(run_id: str, ctx: Ctx) -> object:
    ctx.require_run(run_id, Role.READER)
    return ctx.tracking.get_run(run_id)


@router.patch("/runs/{run_id}", response_model=RunInfo, responses=_ERRORS)
def update_run(run_id: str, body: UpdateRunBody, ctx: Ctx) -> RunInfo:
    ctx.require_run(run_id, Role.EDITOR)
    ctx.audit_object("run", run_id)
    return ctx.tracking.update_run(run_id, body.status, body.end_time, body.run_name)


@router.post("/runs/{run_id}/resume", response_model=RunOut, responses=_ERRORS)
def resume_run(run_id: str, ctx: Ctx) -> object:
    ctx.require_run(run_id, Role.EDITOR)
    ctx.audit_object("run", run_id)
    return ctx.tracking.resume_run(run_id)


@router.post("/runs/{run_id}/delete", response_model=RunInfo, responses=_ERRORS)
def delete_run(run_id: str, ctx: Ctx) -> RunInfo:
    ctx.require_run(run_id, Role.EDITOR)
    ctx.audit_object("run", run_id)
    ctx.tracking.delete_run(run_id)
    return ctx.tracking.get_run(run_id).info


@router.post("/runs/{run_id}/restore", response_model=RunInfo, responses=_ERRORS)
def restore_run(run_id: str, ctx: Ctx) -> RunInfo:
    ctx.require_run(run_id, Role.EDITOR)
    ctx.audit_object("run", run_id)
    ctx.tracking.restore_run(run_id)
    return ctx.tracking.get_run(run_id).info


@router.post("/runs/{run_id}/batch", responses={**_ERRORS, 409: {"description": "Param clash"}})
def log_batch(run_id: str, body: BatchBody, ctx: Ctx) -> dict[str, int]:
    """Metrics, params and tags in one transaction. Re-sending the same batch changes nothing,
    so a client may retry freely."""
    ctx.require_run(run_id, Role.EDITOR)
    ctx.audit_object("run", run_id)
    metrics = [
        make_metric(m.key, math.nan if m.value is None else m.value, m.step, m.timestamp)
        for m in body.metrics
    ]
    with ctx.audit_in_transaction() as audit:
        ctx.tracking.log_batch(
            run_id,
            metrics,
            [(p.key, p.value) for p in body.params],
            [(t.key, t.value) for t in body.tags],
            audit,
        )
    return {"metrics": len(metrics), "params": len(body.params), "tags": len(body.tags)}


@router.delete("/runs/{run_id}/tags/{key:path}", responses=_ERRORS)
def delete_tag(run_id: str, key: str, ctx: Ctx) -> dict[str, str]:
    ctx.require_run(run_id, Role.EDITOR)
    ctx.audit_object("run", run_id)
    ctx.tracking.delete_tag(run_id, key)
    return {"deleted": key}


@router.get("/runs/{run_id}/metrics", response_model=list[MetricOut], responses=_ERRORS)
def latest_metrics(run_id: str, ctx: Ctx) -> list[Metric]:
    """Each metric's latest point, with its step and timestamp."""
    ctx.require_run(run_id, Role.READER)
    return ctx.tracking.get_latest_metrics(run_id)


@router.get(
    "/runs/{run_id}/metrics/{key:path}/history",
    response_model=MetricHistoryPage,
    responses=_ERRORS,
)
def metric_history(
    run_id: str,
    key: str,
    ctx: Ctx,
    max_results: Annotated[int | None, Query(ge=1)] = None,
    page_token: str | None = None,
) -> MetricHistoryPage:
    ctx.require_run(run_id, Role.READER)
    points: list[Metric] = ctx.tracking.get_metric_history(run_id, key)
    page, token = slice_page(points, page_token, page_size(max_results, 100_000, ctx.state))
    return MetricHistoryPage(metrics=page, next_page_token=token)  # type: ignore[arg-type]


# -- artifacts ------------------------------------------------------------------------------------
@router.get("/runs/{run_id}/artifacts", response_model=ArtifactsPage, responses=_ERRORS)
def list_artifacts(
    run_id: str,
    ctx: Ctx,
    path: str | None = None,
    max_results: Annotated[int | None, Query(ge=1)] = None,
    page_token: str | None = None,
) -> ArtifactsPage:
    """The direct children of ``path``, like ``ls``."""
    ctx.require_run(run_id, Role.READER)
    items = ctx.tracking.list_artifacts(run_id, path)
    page, token = slice_page(items, page_token, page_size(max_results, 1000, ctx.state))
    return ArtifactsPage(files=page, next_page_token=token)


@router.get("/runs/{run_id}/artifact-files", response_model=ArtifactFilesPage, responses=_ERRORS)
def artifact_files(
    run_id: str,
    ctx: Ctx,
    path: str | None = None,
    max_results: Annotated[int | None, Query(ge=1)] = None,
    page_token: str | None = None,
) -> ArtifactFilesPage:
    """Every file under ``path``, recursively, with digests and sizes."""
    ctx.require_run(run_id, Role.READER)
    rows = ctx.tracking.artifact_files(run_id, path)
    page, token = slice_page(rows, page_token, page_size(max_results, 10_000, ctx.state))
    return ArtifactFilesPage(files=page, next_page_token=token)


@router.put(
    "/runs/{run_id}/artifacts/{path:path}",
    response_model=ArtifactRow,
    responses={**_ERRORS, 413: {"description": "Upload over server_max_artifact_bytes"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        }
    },
)
def upload_artifact(run_id: str, path: str, request: Request, ctx: Ctx) -> ArtifactRow:
    """Stream the request body into the blob store as the artifact file ``path``."""
    ctx.require_run(run_id, Role.EDITOR)
    ctx.audit_object("run", run_id)
    reader = RequestBodyReader(request, ctx.state.options.max_artifact_bytes)
    return ctx.tracking.log_stream(run_id, path, reader)  # type: ignore[arg-type]


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    response_class=StreamingResponse,
    responses={**_ERRORS, 200: {"content": {"application/octet-stream": {}}}},
)
def download_artifact(run_id: str, path: str, ctx: Ctx) -> StreamingResponse:
    ctx.require_run(run_id, Role.READER)
    clean = safe_relpath(path, "artifact path")
    rows = ctx.tracking.artifact_files(run_id, clean)
    exact = [r for r in rows if r.path == clean]
    if not exact:
        if rows:
            raise InvalidInput(
                f"{clean!r} is a directory; list it with GET /api/v1/runs/<id>/artifacts"
            )
        raise NotFound(f"run {run_id} has no artifact file {clean!r}")
    handle = ctx.tracking.open_artifact(run_id, path)
    return StreamingResponse(
        iter_file(handle),
        media_type="application/octet-stream",
        headers={"content-length": str(exact[0].size), "x-loopline-digest": exact[0].digest},
    )
