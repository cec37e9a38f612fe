"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts``), over the blob store.

MLflow names artifacts by path under the server's artifact root:
``<experiment>/<run_id>/artifacts/<file>`` for a run, ``<experiment>/models/<model_id>/artifacts/
<file>`` for an MLflow 3 logged model. The proxy maps each path to the run or model that owns it,
checks the caller's role on its experiment, and streams bytes to and from the content-addressed
blob store; nothing is written under any other path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from loopline.access import Role
from loopline.errors import InvalidInput, NotFound
from loopline.paths import safe_relpath
from loopline.server.bodies import RequestBodyReader, iter_file
from loopline.server.context import RequestContext, request_context

__all__ = ["router"]

PREFIX = "/api/2.0/mlflow-artifacts"
router = APIRouter()


@dataclass(frozen=True)
class _Target:
    kind: str  # "run" or "logged_model"
    owner: str
    experiment_id: str
    rel: str  # path inside the owner's artifacts ('' for the root)


def _resolve(ctx: RequestContext, raw: str, role: Role) -> _Target:
    if "//" in raw:
        raise InvalidInput(f"artifact path {raw!r} has an empty segment ('//')")
    path = safe_relpath(raw, "artifact path") if raw.strip("/") else ""
    parts = path.split("/") if path else []
    if len(parts) >= 3 and parts[2] == "artifacts":
        experiment_id, run_id = parts[0], parts[1]
        run = ctx.tracking.get_run(run_id)
        if run.info.experiment_id != experiment_id:
            raise NotFound(f"run {run_id} is not in experiment {experiment_id}")
        ctx.require_experiment(experiment_id, role)
        if role > Role.READER:
            ctx.audit_object("run", run_id)
        return _Target("run", run_id, experiment_id, "/".join(parts[3:]))
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        experiment_id, model_id = parts[0], parts[2]
        model = ctx.registry.get_logged_model(model_id)
        if model.experiment_id != experiment_id:
            raise NotFound(f"logged model {model_id} is not in experiment {experiment_id}")
        ctx.require_experiment(experiment_id, role)
        if role > Role.READER:
            ctx.audit_object("logged_model", model_id)
        return _Target("logged_model", model_id, experiment_id, "/".join(parts[4:]))
    raise NotFound(
        f"artifact path {path!r} names no run or logged model: expected "
        "'<experiment>/<run_id>/artifacts/...' or '<experiment>/models/<model_id>/artifacts/...'"
    )


def _files(ctx: RequestContext, target: _Target) -> list[Any]:
    if target.kind == "run":
        return ctx.tracking.artifact_files(target.owner, target.rel or None)
    return ctx.registry.model_artifact_files(target.owner, target.rel or None)


@router.put(PREFIX + "/artifacts/{path:path}", include_in_schema=False)
def upload(path: str, request: Request) -> Response:
    ctx = request_context(request)
    target = _resolve(ctx, path, Role.EDITOR)
    if not target.rel:
        raise InvalidInput("an upload needs a file path below the run's or model's artifacts")
    reader = RequestBodyReader(request, ctx.state.options.max_artifact_bytes)
    if target.kind == "run":
        ctx.tracking.log_stream(target.owner, target.rel, reader)  # type: ignore[arg-type]
    else:
        ctx.registry.log_model_artifact_stream(target.owner, target.rel, reader)  # type: ignore[arg-type]
    return Response(b"{}", media_type="application/json")


@router.get(PREFIX + "/artifacts", include_in_schema=False)
def list_artifacts(request: Request, path: str = "") -> Response:
    """The direct children of ``path``, named relative to it (as MLflow's server does)."""
    ctx = request_context(request)
    target = _resolve(ctx, path, Role.READER)
    if target.kind == "run":
        items = ctx.tracking.list_artifacts(target.owner, target.rel or None)
    else:
        items = ctx.registry.list_model_artifacts(target.owner, target.rel or None)
    files = []
    for item in items:
        if not item.is_dir and item.path == target.rel:
            continue  # listing a file lists nothing, as in MLflow
        name = item.path[len(target.rel) + 1 :] if target.rel else item.path
        entry: dict[str, Any] = {"path": name, "is_dir": item.is_dir}
        if not item.is_dir and item.size is not None:
            entry["file_size"] = item.size
        files.append(entry)
    return Response(orjson.dumps({"files": files}), media_type="application/json")


@router.get(PREFIX + "/artifacts/{path:path}", include_in_schema=False)
def download(path: str, request: Request) -> StreamingResponse:
    ctx = request_context(request)
    target = _resolve(ctx, path, Role.READER)
    rows = [r for r in _files(ctx, target) if r.path == target.rel]
    if not rows:
        raise NotFound(f"no artifact file at {path!r}")
    if target.kind == "run":
        handle = ctx.tracking.open_artifact(target.owner, target.rel)
    else:
        handle = ctx.registry.open_model_artifact(target.owner, target.rel)
    return StreamingResponse(
        iter_file(handle),
        media_type="application/octet-stream",
        headers={"content-length": str(rows[0].size)},
    )


@router.delete(PREFIX + "/artifacts/{path:path}", include_in_schema=False)
def delete(path: str, request: Request) -> Response:
    """Artifacts are immutable records of what a run produced; deleting one is refused."""
    ctx = request_context(request)
    _resolve(ctx, path, Role.EDITOR)
    raise InvalidInput("artifacts cannot be deleted one by one; delete the run instead")


@router.get(PREFIX + "/presigned/{path:path}", include_in_schema=False)
async def presigned(path: str) -> Response:
    """No presigned URLs: every byte goes through the proxy (MLflow's client then streams)."""
    body = {"error_code": "NOT_IMPLEMENTED", "message": "presigned downloads are not offered"}
    return Response(orjson.dumps(body), status_code=501, media_type="application/json")
