"""The model registry over Loopline's native REST API (``/api/v1``): registered models, their
versions, tags and aliases.

Routes are thin, as in :mod:`loopline.server.native`: authorize, call the
:class:`~loopline.registry.service.RegistryService`, answer with its entities. Roles follow the
MLflow registry routes (:mod:`loopline.server.mlflow_api`): reading needs reader, changing
editor, renaming and deleting admin. The remote client
(:mod:`loopline.client.remote_registry`) is this API's other half.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from loopline.access import Role
from loopline.errors import NotFound
from loopline.paths import safe_relpath
from loopline.registry.entities import AliasMove, ModelVersion, PromotionRequest, RegisteredModel
from loopline.registry.policy import PromotionPolicy
from loopline.registry.validation import MAX_VERSION
from loopline.server.bodies import iter_file
from loopline.server.context import RequestContext, page_size, request_context
from loopline.server.schemas import (
    AliasBody,
    AliasHistoryOut,
    ArtifactFilesPage,
    CreateModelVersionBody,
    CreateRegisteredModelBody,
    DecisionBody,
    DescriptionBody,
    ModelVersionsPage,
    NewNameBody,
    PoliciesOut,
    PromoteBody,
    PromotionOut,
    PromotionRequestsOut,
    RegisteredModelsPage,
    RollbackBody,
    StageBody,
    TagValueBody,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["registry"])
Ctx = Annotated[RequestContext, Depends(request_context)]
Version = Annotated[int, Path(ge=1, le=MAX_VERSION, description="the version number")]
_ERRORS = {
    400: {"description": "Invalid input; body names the field: {error_code, message}"},
    401: {"description": "Credentials missing or invalid (auth on)"},
    403: {"description": "The caller lacks the role this needs"},
    404: {"description": "No such object"},
}
_MODELS = "/registered-models/{name}"
_VERSION = "/registered-models/{name}/versions/{version}"


def _model(ctx: RequestContext, name: str, role: Role) -> str:
    """Check ``role`` on the model; a change names the model in its audit record."""
    ctx.require_model(name, role)
    if role > Role.READER:
        ctx.audit_object("registered_model", name)
    return name


# -- registered models ----------------------------------------------------------------------------
@router.post("/registered-models", response_model=RegisteredModel, responses=_ERRORS)
def create_registered_model(body: CreateRegisteredModelBody, ctx: Ctx) -> RegisteredModel:
    """Idempotent with ``Idempotency-Key``; the creator becomes the model's admin."""
    model = ctx.registry.create_registered_model(body.name, body.description, body.tags)
    ctx.became_owner("registered_model", model.name)
    ctx.audit_object("registered_model", model.name)
    return model


@router.get("/registered-models", response_model=RegisteredModelsPage, responses=_ERRORS)
def search_registered_models(
    ctx: Ctx,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    max_results: Annotated[int | None, Query(ge=1)] = None,
    page_token: str | None = None,
) -> RegisteredModelsPage:
    """Models matching ``filter`` (``name LIKE 'fraud%' AND tags.team = 'risk'``); with auth
    on, only those the caller holds a role on (a page may then hold fewer)."""
    models, token = ctx.registry.search_registered_models(
        filter, page_size(max_results, 100, ctx.state), order_by, page_token
    )
    allowed = ctx.readable("registered_model")
    if allowed is not None:
        models = [m for m in models if m.name in allowed]
    return RegisteredModelsPage(registered_models=models, next_page_token=token)


@router.get(_MODELS, response_model=RegisteredModel, responses=_ERRORS)
def get_registered_model(name: str, ctx: Ctx) -> RegisteredModel:
    return ctx.registry.get_registered_model(_model(ctx, name, Role.READER))


@router.patch(_MODELS, response_model=RegisteredModel, responses=_ERRORS)
def update_registered_model(name: str, body: DescriptionBody, ctx: Ctx) -> RegisteredModel:
    return ctx.registry.update_registered_model(_model(ctx, name, Role.EDITOR), body.description)


@router.post(f"{_MODELS}/rename", response_model=RegisteredModel, responses=_ERRORS)
def rename_registered_model(name: str, body: NewNameBody, ctx: Ctx) -> RegisteredModel:
    return ctx.registry.rename_registered_model(_model(ctx, name, Role.ADMIN), body.new_name)


@router.delete(_MODELS, responses=_ERRORS)
def delete_registered_model(name: str, ctx: Ctx) -> dict[str, str]:
    """The model with every version, tag and alias; the files stay."""
    ctx.registry.delete_registered_model(_model(ctx, name, Role.ADMIN))
    return {"deleted": name}


@router.put(f"{_MODELS}/tags/{{key:path}}", response_model=RegisteredModel, responses=_ERRORS)
def set_registered_model_tag(name: str, key: str, body: TagValueBody, ctx: Ctx) -> RegisteredModel:
    ctx.registry.set_registered_model_tag(_model(ctx, name, Role.EDITOR), key, body.value)
    return ctx.registry.get_registered_model(name)


@router.delete(f"{_MODELS}/tags/{{key:path}}", responses=_ERRORS)
def delete_registered_model_tag(name: str, key: str, ctx: Ctx) -> dict[str, str]:
    """Deleting a tag that is not set changes nothing (as in MLflow)."""
    ctx.registry.delete_registered_model_tag(_model(ctx, name, Role.EDITOR), key)
    return {"deleted": key}


@router.get(f"{_MODELS}/latest-versions", response_model=list[ModelVersion], responses=_ERRORS)
def get_latest_versions(
    name: str, ctx: Ctx, stages: Annotated[list[str] | None, Query()] = None
) -> list[ModelVersion]:
    """The newest version in each of ``stages`` (every stage if none are given)."""
    return ctx.registry.get_latest_versions(_model(ctx, name, Role.READER), stages)


# -- aliases --------------------------------------------------------------------------------------
@router.put(f"{_MODELS}/aliases/{{alias}}", response_model=ModelVersion, responses=_ERRORS)
def set_alias(name: str, alias: str, body: AliasBody, ctx: Ctx) -> ModelVersion:
    """Point ``alias`` at ``version``; an alias set elsewhere moves."""
    ctx.registry.set_alias(_model(ctx, name, Role.EDITOR), alias, body.version, reason=body.reason)
    return ctx.registry.get_model_version(name, body.version)


@router.delete(f"{_MODELS}/aliases/{{alias}}", responses=_ERRORS)
def delete_alias(name: str, alias: str, ctx: Ctx, reason: str = "") -> dict[str, str]:
    """Deleting an alias that is not set changes nothing (as in MLflow)."""
    ctx.registry.delete_alias(_model(ctx, name, Role.EDITOR), alias, reason=reason)
    return {"deleted": alias}


@router.post(
    f"{_MODELS}/aliases/{{alias}}/promote",
    response_model=PromotionOut,
    responses={**_ERRORS, 409: {"description": "The alias moved since expected_current"}},
)
def promote(name: str, alias: str, body: PromoteBody, ctx: Ctx) -> PromotionOut:
    """Move ``alias`` to ``version`` as a recorded promotion, or open a promotion request when
    the alias's policy needs approval (403 if a policy check fails); with
    ``expected_current`` a compare-and-set (409 if another promotion moved it first)."""
    done = ctx.registry.promote(
        _model(ctx, name, Role.EDITOR),
        body.version,
        alias,
        reason=body.reason,
        expected_current=body.expected_current,
    )
    if isinstance(done, AliasMove):
        return PromotionOut(applied=True, move=done)
    return PromotionOut(applied=False, request=done)


@router.post(f"{_MODELS}/aliases/{{alias}}/rollback", response_model=AliasMove, responses=_ERRORS)
def rollback(name: str, alias: str, body: RollbackBody, ctx: Ctx) -> AliasMove:
    """Move ``alias`` back to where it pointed before its last move."""
    return ctx.registry.rollback(_model(ctx, name, Role.EDITOR), alias, reason=body.reason)


@router.get(f"{_MODELS}/alias-history", response_model=AliasHistoryOut, responses=_ERRORS)
def alias_history(name: str, ctx: Ctx, alias: str | None = None) -> AliasHistoryOut:
    """Every move of the model's aliases (or of ``alias``), oldest first."""
    return AliasHistoryOut(moves=ctx.registry.alias_history(_model(ctx, name, Role.READER), alias))


@router.get(f"{_MODELS}/aliases/{{alias}}", response_model=ModelVersion, responses=_ERRORS)
def get_version_by_alias(name: str, alias: str, ctx: Ctx) -> ModelVersion:
    return ctx.registry.get_version_by_alias(_model(ctx, name, Role.READER), alias)


# -- model versions -------------------------------------------------------------------------------
@router.post(f"{_MODELS}/versions", response_model=ModelVersion, responses=_ERRORS)
def create_model_version(name: str, body: CreateModelVersionBody, ctx: Ctx) -> ModelVersion:
    """Register ``source`` as the model's next version; idempotent with ``Idempotency-Key``.
    With auth on, the version's ``user_id`` is the caller, whatever the body says."""
    _model(ctx, name, Role.EDITOR)
    if body.run_id:
        ctx.require_run(body.run_id, Role.READER)
    return ctx.registry.create_model_version(
        name,
        body.source,
        run_id=body.run_id,
        tags=body.tags,
        run_link=body.run_link,
        description=body.description,
        model_id=body.model_id,
        user_id=body.user_id if ctx.principal is None else ctx.principal.name,
        version_label=body.version_label,
    )


@router.get("/model-versions", response_model=ModelVersionsPage, responses=_ERRORS)
def search_model_versions(
    ctx: Ctx,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    max_results: Annotated[int | None, Query(ge=1)] = None,
    page_token: str | None = None,
) -> ModelVersionsPage:
    """Versions matching ``filter`` (``name = 'fraud' AND version_number > 2``); with auth on,
    only those of models the caller holds a role on."""
    versions, token = ctx.registry.search_model_versions(
        filter, page_size(max_results, 10_000, ctx.state), order_by, page_token
    )
    allowed = ctx.readable("registered_model")
    if allowed is not None:
        versions = [v for v in versions if v.name in allowed]
    return ModelVersionsPage(model_versions=versions, next_page_token=token)


@router.get(_VERSION, response_model=ModelVersion, responses=_ERRORS)
def get_model_version(name: str, version: Version, ctx: Ctx) -> ModelVersion:
    return ctx.registry.get_model_version(_model(ctx, name, Role.READER), version)


@router.patch(_VERSION, response_model=ModelVersion, responses=_ERRORS)
def update_model_version(
    name: str, version: Version, body: DescriptionBody, ctx: Ctx
) -> ModelVersion:
    return ctx.registry.update_model_version(
        _model(ctx, name, Role.EDITOR), version, body.description
    )


@router.post(f"{_VERSION}/stage", response_model=ModelVersion, responses=_ERRORS)
def transition_model_version_stage(
    name: str, version: Version, body: StageBody, ctx: Ctx
) -> ModelVersion:
    """Move the version to ``stage``; ``archive_existing_versions`` archives the stage's
    other versions (Staging and Production only)."""
    return ctx.registry.transition_model_version_stage(
        _model(ctx, name, Role.EDITOR), version, body.stage, body.archive_existing_versions
    )


@router.get(f"{_VERSION}/files", response_model=ArtifactFilesPage, responses=_ERRORS)
def version_files(name: str, version: Version, ctx: Ctx) -> ArtifactFilesPage:
    """Every file the version loads (pinned at registration), with digest and size."""
    return ArtifactFilesPage(
        files=ctx.registry.version_files(_model(ctx, name, Role.READER), version)
    )


@router.get(
    f"{_VERSION}/files/{{path:path}}",
    response_class=StreamingResponse,
    responses={**_ERRORS, 200: {"content": {"application/octet-stream": {}}}},
)
def download_version_file(name: str, version: Version, path: str, ctx: Ctx) -> StreamingResponse:
    """One file of the version, streamed; ``x-loopline-digest`` carries its BLAKE3 digest so
    the client verifies what it received."""
    rows = ctx.registry.version_files(_model(ctx, name, Role.READER), version)
    clean = safe_relpath(path, "model file path")
    row = next((r for r in rows if r.path == clean), None)
    if row is None:
        raise NotFound(f"model version {name}/{version} has no file {clean!r}")
    return StreamingResponse(
        # The client checks the bytes against x-loopline-digest, so a corrupt blob becomes an
        # IntegrityError there rather than a connection cut mid-stream.
        iter_file(ctx.registry.open_version_file(name, version, clean, verify=False)),
        media_type="application/octet-stream",
        headers={"content-length": str(row.size), "x-loopline-digest": row.digest},
    )


@router.delete(_VERSION, responses=_ERRORS)
def delete_model_version(name: str, version: Version, ctx: Ctx) -> dict[str, int]:
    ctx.registry.delete_model_version(_model(ctx, name, Role.ADMIN), version)
    return {"deleted": version}


@router.put(f"{_VERSION}/tags/{{key:path}}", response_model=ModelVersion, responses=_ERRORS)
def set_model_version_tag(
    name: str, version: Version, key: str, body: TagValueBody, ctx: Ctx
) -> ModelVersion:
    ctx.registry.set_model_version_tag(_model(ctx, name, Role.EDITOR), version, key, body.value)
    return ctx.registry.get_model_version(name, version)


@router.delete(f"{_VERSION}/tags/{{key:path}}", responses=_ERRORS)
def delete_model_version_tag(name: str, version: Version, key: str, ctx: Ctx) -> dict[str, str]:
    ctx.registry.delete_model_version_tag(_model(ctx, name, Role.EDITOR), version, key)
    return {"deleted": key}


# -- promotion policies and requests --------------------------------------------------------------
@router.get(f"{_MODELS}/policies", response_model=PoliciesOut, responses=_ERRORS)
def promotion_policies(name: str, ctx: Ctx) -> PoliciesOut:
    """Every promotion policy in force for the model (set here or in ``loopline.toml``)."""
    return PoliciesOut(policies=ctx.registry.promotion_policies(_model(ctx, name, Role.READER)))


@router.put(f"{_MODELS}/policies/{{alias}}", response_model=PromotionPolicy, responses=_ERRORS)
def set_promotion_policy(name: str, alias: str, body: dict[str, Any], ctx: Ctx) -> PromotionPolicy:
    """Set the policy for ``alias`` (admins of the model): ``approvals``, ``approver_role``,
    ``allow_self_approval``, ``checks``."""
    return ctx.registry.set_promotion_policy(
        _model(ctx, name, Role.ADMIN), {**body, "alias": alias}
    )


@router.delete(f"{_MODELS}/policies/{{alias}}", responses=_ERRORS)
def delete_promotion_policy(name: str, alias: str, ctx: Ctx) -> dict[str, str]:
    ctx.registry.delete_promotion_policy(_model(ctx, name, Role.ADMIN), alias)
    return {"deleted": alias}


@router.get("/promotion-requests", response_model=PromotionRequestsOut, responses=_ERRORS)
def list_promotion_requests(
    ctx: Ctx,
    name: str | None = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    state: str | None = None,
) -> PromotionRequestsOut:
    """Requests oldest first, of one model (``name``) or of every model the caller can read."""
    if name is not None:
        _model(ctx, name, Role.READER)
    found = ctx.registry.list_promotion_requests(name, version=version, state=state)
    allowed = ctx.readable("registered_model")
    if allowed is not None:
        found = [r for r in found if r.name in allowed]
    return PromotionRequestsOut(requests=found)


def _request(ctx: RequestContext, request_id: int) -> PromotionRequest:
    found = ctx.registry.get_promotion_request(request_id)
    _model(ctx, found.name, Role.READER)
    return found


_REQUEST = "/promotion-requests/{request_id}"
RequestId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the request number")]


@router.get(_REQUEST, response_model=PromotionRequest, responses=_ERRORS)
def get_promotion_request(request_id: RequestId, ctx: Ctx) -> PromotionRequest:
    return _request(ctx, request_id)


@router.post(
    f"{_REQUEST}/approve",
    response_model=PromotionRequest,
    responses={**_ERRORS, 409: {"description": "Not pending, decided already, or stale"}},
)
def approve_promotion(request_id: RequestId, body: DecisionBody, ctx: Ctx) -> PromotionRequest:
    """Approve; the approval that completes the policy moves the alias. The role the policy
    names is checked by the registry (403 without it)."""
    ctx.audit_object("registered_model", _request(ctx, request_id).name)
    return ctx.registry.approve(request_id, comment=body.comment)


@router.post(
    f"{_REQUEST}/reject",
    response_model=PromotionRequest,
    responses={**_ERRORS, 409: {"description": "Not pending or decided already"}},
)
def reject_promotion(request_id: RequestId, body: DecisionBody, ctx: Ctx) -> PromotionRequest:
    ctx.audit_object("registered_model", _request(ctx, request_id).name)
    return ctx.registry.reject(request_id, comment=body.comment)
