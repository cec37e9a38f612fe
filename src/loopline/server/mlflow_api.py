"""The MLflow REST protocol (``/api/2.0/mlflow``), over Loopline's services.

Requests and answers follow MLflow's protobuf JSON mapping, field for field, so the official
client (``MLFLOW_TRACKING_URI=http://<loopline server>``) works unchanged: GET requests carry
their fields as query parameters (repeated for lists), the others as a JSON body; errors are
``{"error_code", "message"}`` with MLflow's codes. Runs, experiments and models created here are
ordinary Loopline objects. docs/mlflow.md lists the endpoints served.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from loopline.access import Role
from loopline.errors import InvalidInput
from loopline.paging import slice_page
from loopline.registry.entities import LoggedModel, ModelVersion, RegisteredModel
from loopline.server.context import RequestContext, page_size, request_context
from loopline.tracking.entities import Experiment, Metric, Run, RunInfo, ViewType
from loopline.tracking.validation import make_metric

__all__ = ["router"]

PREFIX = "/api/2.0/mlflow"
router = APIRouter()
Params = dict[str, Any]
Handler = Callable[[RequestContext, Params], Any]

_LIST_FIELDS = frozenset({"experiment_ids", "order_by", "stages", "run_ids", "model_ids"})


# -- plumbing -----------------------------------------------------------------------------------
async def _params(request: Request) -> Params:
    if request.method == "GET":
        params: Params = {}
        for key, value in request.query_params.multi_items():
            if key in _LIST_FIELDS:
                params.setdefault(key, []).append(value)
            else:
                params[key] = value
        return params
    body = await request.body()
    if not body:
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidInput("request body must be a JSON object")
    return parsed


def endpoint(path: str, method: str) -> Callable[[Handler], Handler]:
    """Register ``handler(ctx, params) -> dict`` as an MLflow endpoint."""

    def register(handler: Handler) -> Handler:
        async def route(request: Request) -> Response:
            params = await _params(request)
            params.update(request.path_params)

            def call() -> Any:
                return handler(request_context(request), params)

            result = await run_in_threadpool(call)
            return Response(orjson.dumps(result or {}), media_type="application/json")

        route.__name__ = f"mlflow_{handler.__name__}"
        router.add_api_route(PREFIX + path, route, methods=[method], include_in_schema=False)
        return handler

    return register


def _str(params: Params, name: str, *, required: bool = True, default: str | None = None) -> Any:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"Missing value for required parameter '{name}'")
        return default
    if isinstance(value, (dict, list)):
        raise InvalidInput(f"parameter '{name}' must be a string")
    return str(value)


def _int(params: Params, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"parameter '{name}' must be an integer, got {value!r}") from None


def _list(params: Params, name: str) -> list[Any]:
    value = params.get(name) or []
    if not isinstance(value, list):
        value = [value]
    return value


def _pairs(items: Any, what: str) -> list[tuple[str, str]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidInput(f"'{what}' must be a list of {{key, value}} objects")
    out = []
    for item in items:
        if not isinstance(item, dict) or "key" not in item:
            raise InvalidInput(f"each of '{what}' needs a 'key' and a 'value'")
        out.append((str(item["key"]), "" if item.get("value") is None else str(item["value"])))
    return out


def _paged(key: str, items: list[Any], token: str | None) -> dict[str, Any]:
    """A page in MLflow's shape: ``next_page_token`` only when there is a next page."""
    out: dict[str, Any] = {key: items}
    if token:
        out["next_page_token"] = token
    return out


def _tags_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _wire(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _float(value: Any, key: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"metric {key!r}: value {value!r} is not a number") from None


# -- entity shapes --------------------------------------------------------------------------------
def experiment_json(e: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "last_update_time": e.last_update_time,
        "creation_time": e.creation_time,
        "tags": _tags_list(e.tags),
    }


def run_info_json(info: RunInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "artifact_uri": info.artifact_uri,
        "lifecycle_stage": info.lifecycle_stage,
    }
    if info.end_time is not None:
        out["end_time"] = info.end_time
    return out


def run_json(run: Run, latest: list[Metric] | None = None) -> dict[str, Any]:
    """``latest`` gives each metric's step and timestamp (as get-run answers). Search pages are
    built from run summaries, which keep values only: there step and timestamp read 0 (MLflow's
    client exposes a run's metrics as key -> value, so nothing it returns changes)."""
    if latest is not None:
        metrics = [metric_json(m) for m in latest]
    else:
        metrics = [
            {"key": k, "value": _wire(v), "timestamp": 0, "step": 0} for k, v in run.metrics.items()
        ]
    return {
        "info": run_info_json(run.info),
        "data": {
            "metrics": metrics,
            "params": [{"key": k, "value": v} for k, v in run.params.items()],
            "tags": _tags_list(run.tags),
        },
        "inputs": {},
    }


def metric_json(m: Metric) -> dict[str, Any]:
    return {"key": m.key, "value": _wire(m.value), "timestamp": m.timestamp, "step": m.step}


def model_version_json(v: ModelVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp,
        "user_id": v.user_id,
        "current_stage": v.current_stage,
        "description": v.description,
        "source": v.source,
        "status": v.status,
        "status_message": v.status_message,
        "tags": _tags_list(v.tags),
        "aliases": list(v.aliases),
    }
    if v.run_id:
        out["run_id"] = v.run_id
    if v.run_link:
        out["run_link"] = v.run_link
    if v.model_id:
        out["model_id"] = v.model_id
    return out


def registered_model_json(m: RegisteredModel) -> dict[str, Any]:
    return {
        "name": m.name,
        "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
        "description": m.description,
        "tags": _tags_list(m.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in m.aliases.items()],
        "latest_versions": [model_version_json(v) for v in m.latest_versions],
    }


_LOGGED_STATUS = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
_LOGGED_STATUS_IN = {v: k for k, v in _LOGGED_STATUS.items()}


def logged_model_json(m: LoggedModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": m.model_id,
        "experiment_id": m.experiment_id,
        "name": m.name,
        "creation_timestamp_ms": m.creation_timestamp,
        "last_updated_timestamp_ms": m.last_updated_timestamp,
        "artifact_uri": m.artifact_location,
        "status": _LOGGED_STATUS.get(m.status, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
        "status_message": m.status_message,
        "tags": _tags_list(m.tags),
    }
    if m.model_type:
        info["model_type"] = m.model_type
    if m.source_run_id:
        info["source_run_id"] = m.source_run_id
    return {
        "info": info,
        "data": {"params": [{"key": k, "value": v} for k, v in m.params.items()], "metrics": []},
    }


# -- experiments ----------------------------------------------------------------------------------
@endpoint("/experiments/create", "POST")
def create_experiment(ctx: RequestContext, p: Params) -> Any:
    tags = dict(_pairs(p.get("tags"), "tags"))
    experiment_id = ctx.tracking.create_experiment(
        _str(p, "name"), _str(p, "artifact_location", required=False), tags
    )
    ctx.became_owner("experiment", experiment_id)
    ctx.audit_object("experiment", experiment_id)
    return {"experiment_id": experiment_id}


@endpoint("/experiments/get", "GET")
def get_experiment(ctx: RequestContext, p: Params) -> Any:
    experiment_id = _str(p, "experiment_id")
    ctx.require_experiment(experiment_id, Role.READER)
    return {"experiment": experiment_json(ctx.tracking.get_experiment(experiment_id))}


@endpoint("/experiments/get-by-name", "GET")
def get_experiment_by_name(ctx: RequestContext, p: Params) -> Any:
    experiment = ctx.tracking.get_experiment_by_name(_str(p, "experiment_name"))
    ctx.require_experiment(experiment.experiment_id, Role.READER)
    return {"experiment": experiment_json(experiment)}


_VIEW = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}


def _view(value: Any) -> ViewType:
    text = _VIEW.get(str(value), str(value or "ACTIVE_ONLY"))
    try:
        return ViewType(text)
    except ValueError:
        raise InvalidInput(f"view type {value!r} is not ACTIVE_ONLY, DELETED_ONLY or ALL") from None


@endpoint("/experiments/search", "POST")
def search_experiments(ctx: RequestContext, p: Params) -> Any:
    experiments, token = ctx.tracking.search_experiments(
        _view(p.get("view_type")),
        page_size(_int(p, "max_results"), 1000, ctx.state),
        _str(p, "filter", required=False),
        [str(o) for o in _list(p, "order_by")],
        _str(p, "page_token", required=False),
    )
    allowed = ctx.readable("experiment")
    if allowed is not None:
        experiments = [e for e in experiments if e.experiment_id in allowed]
    return _paged("experiments", [experiment_json(e) for e in experiments], token)


def _experiment_action(action: str, role: Role) -> Handler:
    def handler(ctx: RequestContext, p: Params) -> Any:
        experiment_id = _str(p, "experiment_id")
        ctx.require_experiment(experiment_id, role)
        ctx.audit_object("experiment", experiment_id)
        getattr(ctx.tracking, action)(experiment_id)
        return {}

    handler.__name__ = action
    return handler


endpoint("/experiments/delete", "POST")(_experiment_action("delete_experiment", Role.ADMIN))
endpoint("/experiments/restore", "POST")(_experiment_action("restore_experiment", Role.ADMIN))


@endpoint("/experiments/update", "POST")
def update_experiment(ctx: RequestContext, p: Params) -> Any:
    experiment_id = _str(p, "experiment_id")
    ctx.require_experiment(experiment_id, Role.EDITOR)
    ctx.audit_object("experiment", experiment_id)
    new_name = _str(p, "new_name", required=False)
    if new_name:
        ctx.tracking.rename_experiment(experiment_id, new_name)
    return {}


@endpoint("/experiments/set-experiment-tag", "POST")
def set_experiment_tag(ctx: RequestContext, p: Params) -> Any:
    experiment_id = _str(p, "experiment_id")
    ctx.require_experiment(experiment_id, Role.EDITOR)
    ctx.audit_object("experiment", experiment_id)
    ctx.tracking.set_experiment_tag(experiment_id, _str(p, "key"), p.get("value", ""))
    return {}


# -- runs -----------------------------------------------------------------------------------------
@endpoint("/runs/create", "POST")
def create_run(ctx: RequestContext, p: Params) -> Any:
    experiment_id = _str(p, "experiment_id", required=False, default="0")
    ctx.require_experiment(experiment_id, Role.EDITOR)
    tags = dict(_pairs(p.get("tags"), "tags"))
    run = ctx.tracking.create_run(
        experiment_id,
        run_name=_str(p, "run_name", required=False),
        tags=tags,
        start_time=_int(p, "start_time"),
        parent_run_id=tags.get("mlflow.parentRunId") or None,
        user_id=ctx.principal.name if ctx.principal else _str(p, "user_id", required=False),
    )
    ctx.audit_object("run", run.info.run_id)
    return {"run": run_json(run)}


@endpoint("/runs/get", "GET")
def get_run(ctx: RequestContext, p: Params) -> Any:
    run_id = _str(p, "run_id", required=False) or _str(p, "run_uuid")
    ctx.require_run(run_id, Role.READER)
    run = ctx.tracking.get_run(run_id)
    return {"run": run_json(run, ctx.tracking.get_latest_metrics(run_id))}


@endpoint("/runs/update", "POST")
def update_run(ctx: RequestContext, p: Params) -> Any:
    run_id = _str(p, "run_id", required=False) or _str(p, "run_uuid")
    ctx.require_run(run_id, Role.EDITOR)
    ctx.audit_object("run", run_id)
    info = ctx.tracking.update_run(
        run_id,
        status=_str(p, "status", required=False),
        end_time=_int(p, "end_time"),
        run_name=_str(p, "run_name", required=False),
    )
    return {"run_info": run_info_json(info)}


def _run_action(action: str) -> Handler:
    def handler(ctx: RequestContext, p: Params) -> Any:
        run_id = _str(p, "run_id")
        ctx.require_run(run_id, Role.EDITOR)
        ctx.audit_object("run", run_id)
        getattr(ctx.tracking, action)(run_id)
        return {}

    handler.__name__ = action
    return handler


endpoint("/runs/delete", "POST")(_run_action("delete_run"))
endpoint("/runs/restore", "POST")(_run_action("restore_run"))


def _metrics(items: Any) -> list[Metric]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidInput("'metrics' must be a list")
    out = []
    for m in items:
        if not isinstance(m, dict) or "key" not in m:
            raise InvalidInput("each metric needs 'key', 'value', 'timestamp' and 'step'")
        key = str(m["key"])
        out.append(
            make_metric(key, _float(m.get("value"), key), m.get("step") or 0, m.get("timestamp"))
        )
    return out


def _log(ctx: RequestContext, p: Params, metrics: list[Metric], params: Any, tags: Any) -> Any:
    run_id = _str(p, "run_id", required=False) or _str(p, "run_uuid")
    ctx.require_run(run_id, Role.EDITOR)
    ctx.audit_object("run", run_id)
    with ctx.audit_in_transaction() as audit:
        ctx.tracking.log_batch(run_id, metrics, params, tags, audit)
    return {}


@endpoint("/runs/log-batch", "POST")
def log_batch(ctx: RequestContext, p: Params) -> Any:
    return _log(
        ctx,
        p,
        _metrics(p.get("metrics")),
        _pairs(p.get("params"), "params"),
        _pairs(p.get("tags"), "tags"),
    )


@endpoint("/runs/log-metric", "POST")
def log_metric(ctx: RequestContext, p: Params) -> Any:
    return _log(ctx, p, _metrics([p]), [], [])


@endpoint("/runs/log-parameter", "POST")
def log_param(ctx: RequestContext, p: Params) -> Any:
    return _log(ctx, p, [], [(_str(p, "key"), p.get("value", ""))], [])


@endpoint("/runs/set-tag", "POST")
def set_tag(ctx: RequestContext, p: Params) -> Any:
    return _log(ctx, p, [], [], [(_str(p, "key"), p.get("value", ""))])


@endpoint("/runs/delete-tag", "POST")
def delete_tag(ctx: RequestContext, p: Params) -> Any:
    run_id = _str(p, "run_id")
    ctx.require_run(run_id, Role.EDITOR)
    ctx.audit_object("run", run_id)
    ctx.tracking.delete_tag(run_id, _str(p, "key"))
    return {}


@endpoint("/runs/log-model", "POST")
def log_model(ctx: RequestContext, p: Params) -> Any:
    """MLflow 2's record of a logged model: kept, as MLflow does, in a run tag."""
    import json

    run_id = _str(p, "run_id")
    model = orjson.loads(_str(p, "model_json"))
    run = ctx.tracking.get_run(run_id)
    history = json.loads(run.tags.get("mlflow.log-model.history", "[]"))
    history.append(model)
    return _log(ctx, p, [], [], [("mlflow.log-model.history", json.dumps(history))])


@endpoint("/runs/log-inputs", "POST")
def log_inputs(ctx: RequestContext, p: Params) -> Any:
    """Dataset inputs are accepted and not stored yet (Loopline data versioning links data to
    runs through its own lineage)."""
    ctx.require_run(_str(p, "run_id"), Role.EDITOR)
    return {}


@endpoint("/runs/outputs", "POST")
def log_outputs(ctx: RequestContext, p: Params) -> Any:
    run_id = _str(p, "run_id")
    ctx.require_run(run_id, Role.EDITOR)
    for item in _list(p, "models"):
        if isinstance(item, dict) and item.get("model_id"):
            ctx.workspace.lineage.link(
                ("run", run_id), ("logged_model", str(item["model_id"])), "produced"
            )
    return {}


@endpoint("/runs/search", "POST")
def search_runs(ctx: RequestContext, p: Params) -> Any:
    ids = [str(e) for e in _list(p, "experiment_ids")]
    for experiment_id in ids or ["0"]:
        ctx.require_experiment(experiment_id, Role.READER)
    runs, token = ctx.tracking.search_runs(
        ids or None,
        _str(p, "filter", required=False),
        [str(o) for o in _list(p, "order_by")],
        page_size(_int(p, "max_results"), 1000, ctx.state),
        _view(p.get("run_view_type")),
        _str(p, "page_token", required=False),
    )
    return _paged("runs", [run_json(r) for r in runs], token)


@endpoint("/metrics/get-history", "GET")
def get_metric_history(ctx: RequestContext, p: Params) -> Any:
    run_id = _str(p, "run_id", required=False) or _str(p, "run_uuid")
    ctx.require_run(run_id, Role.READER)
    points = ctx.tracking.get_metric_history(run_id, _str(p, "metric_key"))
    size = page_size(_int(p, "max_results"), 25_000, ctx.state)
    page, token = slice_page(points, _str(p, "page_token", required=False), size)
    return _paged("metrics", [metric_json(m) for m in page], token)


@endpoint("/artifacts/list", "GET")
def list_run_artifacts(ctx: RequestContext, p: Params) -> Any:
    run_id = _str(p, "run_id", required=False) or _str(p, "run_uuid")
    ctx.require_run(run_id, Role.READER)
    run = ctx.tracking.get_run(run_id)
    files = ctx.tracking.list_artifacts(run_id, _str(p, "path", required=False))
    return {
        "root_uri": run.info.artifact_uri,
        "files": [_file_json(f.path, f.is_dir, f.size) for f in files],
    }


def _file_json(path: str, is_dir: bool, size: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"path": path, "is_dir": is_dir}
    if not is_dir and size is not None:
        out["file_size"] = size
    return out


# -- logged models (MLflow 3) ---------------------------------------------------------------------
@endpoint("/logged-models", "POST")
def create_logged_model(ctx: RequestContext, p: Params) -> Any:
    experiment_id = _str(p, "experiment_id")
    ctx.require_experiment(experiment_id, Role.EDITOR)
    model = ctx.registry.create_logged_model(
        experiment_id,
        name=_str(p, "name", required=False),
        source_run_id=_str(p, "source_run_id", required=False),
        model_type=_str(p, "model_type", required=False),
        tags=dict(_pairs(p.get("tags"), "tags")),
        params=dict(_pairs(p.get("params"), "params")),
    )
    ctx.audit_object("logged_model", model.model_id)
    return {"model": logged_model_json(model)}


def _logged_model(ctx: RequestContext, p: Params, role: Role) -> LoggedModel:
    model = ctx.registry.get_logged_model(_str(p, "model_id"))
    ctx.require_experiment(model.experiment_id, role)
    if role > Role.READER:
        ctx.audit_object("logged_model", model.model_id)
    return model


@endpoint("/logged-models/search", "POST")
def search_logged_models(ctx: RequestContext, p: Params) -> Any:
    ids = [str(e) for e in _list(p, "experiment_ids")]
    for experiment_id in ids:
        ctx.require_experiment(experiment_id, Role.READER)
    order = []
    for o in _list(p, "order_by"):
        if isinstance(o, dict) and o.get("field_name"):
            order.append(f"{o['field_name']} {'ASC' if o.get('ascending', True) else 'DESC'}")
    models, token = ctx.registry.search_logged_models(
        ids,
        filter_string=_str(p, "filter", required=False),
        order_by=order,
        max_results=page_size(_int(p, "max_results"), 100, ctx.state),
        page_token=_str(p, "page_token", required=False),
    )
    return _paged("models", [logged_model_json(m) for m in models], token)


@endpoint("/logged-models/{model_id}", "GET")
def get_logged_model(ctx: RequestContext, p: Params) -> Any:
    return {"model": logged_model_json(_logged_model(ctx, p, Role.READER))}


@endpoint("/logged-models/{model_id}", "PATCH")
def finalize_logged_model(ctx: RequestContext, p: Params) -> Any:
    model = _logged_model(ctx, p, Role.EDITOR)
    status = _str(p, "status")
    model = ctx.registry.finalize_logged_model(
        model.model_id, _LOGGED_STATUS_IN.get(status, status)
    )
    return {"model": logged_model_json(model)}


@endpoint("/logged-models/{model_id}", "DELETE")
def delete_logged_model(ctx: RequestContext, p: Params) -> Any:
    model = _logged_model(ctx, p, Role.EDITOR)
    ctx.registry.delete_logged_model(model.model_id)
    return {}


@endpoint("/logged-models/{model_id}/tags", "PATCH")
def set_logged_model_tags(ctx: RequestContext, p: Params) -> Any:
    model = _logged_model(ctx, p, Role.EDITOR)
    ctx.registry.set_logged_model_tags(model.model_id, dict(_pairs(p.get("tags"), "tags")))
    return {}


@endpoint("/logged-models/{model_id}/tags/{tag_key}", "DELETE")
def delete_logged_model_tag(ctx: RequestContext, p: Params) -> Any:
    model = _logged_model(ctx, p, Role.EDITOR)
    ctx.registry.delete_logged_model_tag(model.model_id, _str(p, "tag_key"))
    return {}


@endpoint("/logged-models/{model_id}/params", "POST")
def log_logged_model_params(ctx: RequestContext, p: Params) -> Any:
    model = _logged_model(ctx, p, Role.EDITOR)
    ctx.registry.log_logged_model_params(model.model_id, dict(_pairs(p.get("params"), "params")))
    return {}


@endpoint("/logged-models/{model_id}/artifacts/directories", "GET")
def list_logged_model_artifacts(ctx: RequestContext, p: Params) -> Any:
    model = _logged_model(ctx, p, Role.READER)
    files = ctx.registry.list_model_artifacts(
        model.model_id, _str(p, "artifact_directory_path", required=False)
    )
    return {
        "root_uri": model.artifact_location,
        "files": [_file_json(f.path, f.is_dir, f.size) for f in files],
    }


# -- model registry -------------------------------------------------------------------------------
def _model_name(ctx: RequestContext, p: Params, role: Role, field: str = "name") -> str:
    name = _str(p, field)
    ctx.require_model(name, role)
    if role > Role.READER:
        ctx.audit_object("registered_model", name)
    return name


@endpoint("/registered-models/create", "POST")
def create_registered_model(ctx: RequestContext, p: Params) -> Any:
    name = _str(p, "name")
    model = ctx.registry.create_registered_model(
        name, _str(p, "description", required=False), dict(_pairs(p.get("tags"), "tags"))
    )
    ctx.became_owner("registered_model", name)
    ctx.audit_object("registered_model", name)
    return {"registered_model": registered_model_json(model)}


@endpoint("/registered-models/get", "GET")
def get_registered_model(ctx: RequestContext, p: Params) -> Any:
    name = _model_name(ctx, p, Role.READER)
    return {"registered_model": registered_model_json(ctx.registry.get_registered_model(name))}


@endpoint("/registered-models/rename", "POST")
def rename_registered_model(ctx: RequestContext, p: Params) -> Any:
    name = _model_name(ctx, p, Role.ADMIN)
    model = ctx.registry.rename_registered_model(name, _str(p, "new_name"))
    return {"registered_model": registered_model_json(model)}


@endpoint("/registered-models/update", "PATCH")
def update_registered_model(ctx: RequestContext, p: Params) -> Any:
    name = _model_name(ctx, p, Role.EDITOR)
    model = ctx.registry.update_registered_model(name, _str(p, "description", required=False))
    return {"registered_model": registered_model_json(model)}


@endpoint("/registered-models/delete", "DELETE")
def delete_registered_model(ctx: RequestContext, p: Params) -> Any:
    ctx.registry.delete_registered_model(_model_name(ctx, p, Role.ADMIN))
    return {}


@endpoint("/registered-models/search", "GET")
def search_registered_models(ctx: RequestContext, p: Params) -> Any:
    size = page_size(_int(p, "max_results"), 100, ctx.state)
    models, token = ctx.registry.search_registered_models(
        _str(p, "filter", required=False),
        size,
        [str(o) for o in _list(p, "order_by")],
        _str(p, "page_token", required=False),
    )
    allowed = ctx.readable("registered_model")
    if allowed is not None:
        models = [m for m in models if m.name in allowed]
    return _paged("registered_models", [registered_model_json(m) for m in models], token)


@endpoint("/registered-models/get-latest-versions", "POST")
def get_latest_versions(ctx: RequestContext, p: Params) -> Any:
    name = _model_name(ctx, p, Role.READER)
    versions = ctx.registry.get_latest_versions(name, [str(s) for s in _list(p, "stages")] or None)
    return {"model_versions": [model_version_json(v) for v in versions]}


endpoint("/registered-models/get-latest-versions", "GET")(get_latest_versions)


@endpoint("/registered-models/set-tag", "POST")
def set_registered_model_tag(ctx: RequestContext, p: Params) -> Any:
    name = _model_name(ctx, p, Role.EDITOR)
    ctx.registry.set_registered_model_tag(name, _str(p, "key"), p.get("value", ""))
    return {}


@endpoint("/registered-models/delete-tag", "DELETE")
def delete_registered_model_tag(ctx: RequestContext, p: Params) -> Any:
    name = _model_name(ctx, p, Role.EDITOR)
    ctx.registry.delete_registered_model_tag(name, _str(p, "key"))
    return {}


@endpoint("/registered-models/alias", "POST")
def set_alias(ctx: RequestContext, p: Params) -> Any:
    name = _model_name(ctx, p, Role.EDITOR)
    ctx.registry.set_alias(name, _str(p, "alias"), _str(p, "version"))
    return {}


@endpoint("/registered-models/alias", "DELETE")
def delete_alias(ctx: RequestContext, p: Params) -> Any:
    name = _model_name(ctx, p, Role.EDITOR)
    ctx.registry.delete_alias(name, _str(p, "alias"))
    return {}


@endpoint("/registered-models/alias", "GET")
def get_version_by_alias(ctx: RequestContext, p: Params) -> Any:
    name = _model_name(ctx, p, Role.READER)
    version = ctx.registry.get_version_by_alias(name, _str(p, "alias"))
    return {"model_version": model_version_json(version)}


@endpoint("/model-versions/create", "POST")
def create_model_version(ctx: RequestContext, p: Params) -> Any:
    name = _model_name(ctx, p, Role.EDITOR)
    run_id = _str(p, "run_id", required=False)
    if run_id:
        ctx.require_run(run_id, Role.READER)
    version = ctx.registry.create_model_version(
        name,
        _str(p, "source"),
        run_id=run_id,
        tags=dict(_pairs(p.get("tags"), "tags")),
        run_link=_str(p, "run_link", required=False),
        description=_str(p, "description", required=False),
        model_id=_str(p, "model_id", required=False),
        user_id=ctx.actor,
    )
    return {"model_version": model_version_json(version)}


def _version(ctx: RequestContext, p: Params, role: Role) -> tuple[str, str]:
    return _model_name(ctx, p, role), _str(p, "version")


@endpoint("/model-versions/get", "GET")
def get_model_version(ctx: RequestContext, p: Params) -> Any:
    name, version = _version(ctx, p, Role.READER)
    return {"model_version": model_version_json(ctx.registry.get_model_version(name, version))}


@endpoint("/model-versions/update", "PATCH")
def update_model_version(ctx: RequestContext, p: Params) -> Any:
    name, version = _version(ctx, p, Role.EDITOR)
    updated = ctx.registry.update_model_version(
        name, version, _str(p, "description", required=False)
    )
    return {"model_version": model_version_json(updated)}


@endpoint("/model-versions/transition-stage", "POST")
def transition_stage(ctx: RequestContext, p: Params) -> Any:
    name, version = _version(ctx, p, Role.EDITOR)
    archive = str(p.get("archive_existing_versions", "false")).lower() == "true"
    updated = ctx.registry.transition_model_version_stage(name, version, _str(p, "stage"), archive)
    return {"model_version": model_version_json(updated)}


@endpoint("/model-versions/delete", "DELETE")
def delete_model_version(ctx: RequestContext, p: Params) -> Any:
    name, version = _version(ctx, p, Role.ADMIN)
    ctx.registry.delete_model_version(name, version)
    return {}


@endpoint("/model-versions/search", "GET")
def search_model_versions(ctx: RequestContext, p: Params) -> Any:
    size = page_size(_int(p, "max_results"), 10_000, ctx.state)
    versions, token = ctx.registry.search_model_versions(
        _str(p, "filter", required=False),
        size,
        [str(o) for o in _list(p, "order_by")],
        _str(p, "page_token", required=False),
    )
    allowed = ctx.readable("registered_model")
    if allowed is not None:
        versions = [v for v in versions if v.name in allowed]
    return _paged("model_versions", [model_version_json(v) for v in versions], token)


@endpoint("/model-versions/get-download-uri", "GET")
def get_download_uri(ctx: RequestContext, p: Params) -> Any:
    name, version = _version(ctx, p, Role.READER)
    found = ctx.registry.get_model_version(name, version)
    uri = found.source
    if found.model_id and uri.startswith("models:/"):
        uri = ctx.registry.get_logged_model(found.model_id).artifact_location
    return {"artifact_uri": uri}


@endpoint("/model-versions/set-tag", "POST")
def set_model_version_tag(ctx: RequestContext, p: Params) -> Any:
    name, version = _version(ctx, p, Role.EDITOR)
    ctx.registry.set_model_version_tag(name, version, _str(p, "key"), p.get("value", ""))
    return {}


@endpoint("/model-versions/delete-tag", "DELETE")
def delete_model_version_tag(ctx: RequestContext, p: Params) -> Any:
    name, version = _version(ctx, p, Role.EDITOR)
    ctx.registry.delete_model_version_tag(name, version, _str(p, "key"))
    return {}
