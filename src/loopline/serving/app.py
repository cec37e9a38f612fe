"""The serving ASGI app: one model, the Open Inference Protocol v2 and MLflow's scoring routes.

Errors carry both the house body (``error_code``, ``message``, as ``loopline server`` sends)
and OIP's ``error`` field, so Loopline, MLflow and KServe/Triton clients each find the message
where they look for it. Prediction runs in the thread pool: a slow model never blocks the
event loop, so health checks answer while it works.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from loopline._version import __version__
from loopline.errors import InvalidInput, LooplineError, NotFound
from loopline.serving import oip, scoring
from loopline.serving.model import ServedModel, load_served_model
from loopline.workspace import Workspace

__all__ = ["ENV_MODEL_DIR", "ENV_NAME", "ENV_VERSION", "app_from_environment", "create_serving_app"]

log = logging.getLogger("loopline.serving")

ENV_MODEL_DIR = "LOOPLINE_SERVE_MODEL_DIR"
ENV_NAME = "LOOPLINE_SERVE_NAME"
ENV_VERSION = "LOOPLINE_SERVE_VERSION"
"""How ``loopline serve --workers N`` hands the model to worker processes."""


def _json(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def _error(exc: LooplineError) -> Response:
    body = {"error": exc.message, "error_code": exc.code, "message": exc.message}
    return _json(body, exc.http_status, {"x-loopline-error-code": exc.code})


async def _body(request: Request) -> Any:
    raw = await request.body()
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";")[0].strip().lower() not in ("application/json", ""):
        raise InvalidInput(f"content-type {content_type!r}: send application/json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from exc


def _predict(model: ServedModel, data: Any) -> Any:
    try:
        return model.predict(data)
    except LooplineError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        # The model refused the values themselves (a NaN, a wrong width the signature did
        # not catch): that is the client's input, not a server fault.
        raise InvalidInput(f"the model could not score the input: {exc}") from exc


def create_serving_app(
    model_dir_or_uri: str | Path | ServedModel,
    name: str | None = None,
    *,
    version: str | int | None = None,
    workspace: Workspace | None = None,
) -> FastAPI:
    """An app serving one model: a model directory, a model URI (loaded through
    ``workspace``, else the current one) or an already loaded :class:`ServedModel`.
    ``name`` is what clients put in ``/v2/models/{name}``."""
    if isinstance(model_dir_or_uri, ServedModel):
        model = model_dir_or_uri
    else:
        model = load_served_model(model_dir_or_uri, name, version, workspace)

    app = FastAPI(
        title=f"Loopline serving: {model.name}",
        version=__version__,
        description=(
            "Loopline's minimal serving endpoint for one model: Open Inference Protocol v2 "
            "under /v2 and MLflow's scoring protocol at /invocations."
        ),
    )
    app.state.model = model

    @app.exception_handler(LooplineError)
    async def _loopline_error(request: Request, exc: LooplineError) -> Response:
        return _error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
            body = {"error": message, "error_code": "METHOD_NOT_ALLOWED", "message": message}
            return _json(body, 405)
        return _error(NotFound(f"{request.method} {request.url.path} is not served here"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(LooplineError("internal server error; see the server log"))

    def served(requested: str, version: str | None = None) -> ServedModel:
        if requested != model.name:
            raise NotFound(
                f"model {requested!r} is not served here; this server serves {model.name!r}"
            )
        if version is not None and version != model.version:
            raise NotFound(
                f"model {requested!r} version {version!r} is not served here; "
                f"this server serves version {model.version or '(unversioned)'}"
            )
        return model

    # -- Open Inference Protocol v2 ------------------------------------------------------------

    @app.get("/v2/health/live", tags=["health"], summary="The server answers")
    def live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready", tags=["health"], summary="The model is loaded")
    def ready() -> Response:
        # The model is loaded before the app exists, so a server that answers is ready.
        return _json({"ready": True})

    @app.get("/v2", tags=["metadata"], summary="Server metadata")
    def server_metadata() -> Response:
        return _json({"name": "loopline", "version": __version__, "extensions": []})

    def metadata_of(name: str, version: str | None) -> Response:
        found = served(name, version)
        body: dict[str, Any] = {"name": found.name, "platform": found.platform}
        if found.version is not None:
            body["versions"] = [found.version]
        body["inputs"] = oip.input_metadata(found)
        body["outputs"] = oip.output_metadata(found)
        return _json(body)

    async def infer_with(request: Request, name: str, version: str | None) -> Response:
        found = served(name, version)
        if "inference-header-content-length" in request.headers:
            raise InvalidInput(
                "binary tensor data (Triton's binary_data extension) is not supported: send the "
                "tensors as JSON (tritonclient: set_data_from_numpy(..., binary_data=False))"
            )
        body = await _body(request)
        data = oip.decode_request(body, found)
        predictions = await run_in_threadpool(_predict, found, data)
        answer: dict[str, Any] = {"model_name": found.name}
        if found.version is not None:
            answer["model_version"] = found.version
        if isinstance(body.get("id"), str):
            answer["id"] = body["id"]
        answer["outputs"] = oip.encode_outputs(predictions, body.get("outputs"))
        return _json(answer)

    @app.get("/v2/models/{name}", tags=["metadata"], summary="Model metadata")
    def model_metadata(name: str) -> Response:
        return metadata_of(name, None)

    @app.get("/v2/models/{name}/versions/{version}", tags=["metadata"], summary="Model metadata")
    def model_version_metadata(name: str, version: str) -> Response:
        return metadata_of(name, version)

    @app.get("/v2/models/{name}/ready", tags=["health"], summary="The model is ready")
    def model_ready(name: str) -> Response:
        return _json({"name": served(name).name, "ready": True})

    @app.get(
        "/v2/models/{name}/versions/{version}/ready", tags=["health"], summary="The model is ready"
    )
    def model_version_ready(name: str, version: str) -> Response:
        return _json({"name": served(name, version).name, "ready": True})

    @app.post("/v2/models/{name}/infer", tags=["inference"], summary="OIP v2 inference")
    async def infer(request: Request, name: str) -> Response:
        return await infer_with(request, name, None)

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        tags=["inference"],
        summary="OIP v2 inference",
    )
    async def infer_version(request: Request, name: str, version: str) -> Response:
        return await infer_with(request, name, version)

    # -- MLflow scoring protocol ---------------------------------------------------------------

    @app.get("/ping", tags=["health"], summary="MLflow scoring server health check")
    @app.get("/health", tags=["health"], include_in_schema=False)
    def ping() -> Response:
        return _json({"status": "ok"})

    @app.post("/invocations", tags=["inference"], summary="MLflow scoring protocol")
    async def invocations(request: Request) -> Response:
        data = scoring.decode_invocation(await _body(request), model)
        predictions = await run_in_threadpool(_predict, model, data)
        return _json(scoring.encode_predictions(predictions))

    return app


def app_from_environment() -> FastAPI:
    """Uvicorn factory for ``loopline serve --workers N``: the parent process has resolved
    and verified the model into a directory and names it in ``LOOPLINE_SERVE_*``."""
    return create_serving_app(
        os.environ[ENV_MODEL_DIR],
        os.environ.get(ENV_NAME) or None,
        version=os.environ.get(ENV_VERSION) or None,
    )
