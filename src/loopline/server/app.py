"""Builds the FastAPI application: routers, error mapping, limits, metrics and audit.

The app holds one :class:`~loopline.workspace.Workspace` (connection pools and the blob store)
and nothing else, so any number of processes and replicas can serve the same stores.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from loopline import __version__
from loopline.config import Settings
from loopline.errors import LooplineError, PayloadTooLarge
from loopline.server.bodies import drain
from loopline.server.context import AUDITED_METHODS, ServerState
from loopline.server.metrics import RequestMetrics
from loopline.workspace import Workspace

__all__ = ["ServerOptions", "create_app", "error_response", "json_response"]

log = logging.getLogger("loopline.server")


@dataclass(frozen=True)
class ServerOptions:
    auth: bool = False
    """Require credentials on every API route (``/healthz``, ``/readyz`` and ``/metrics`` stay
    open for load balancers and scrapers)."""
    max_body_bytes: int = 16 * 1024 * 1024
    max_artifact_bytes: int = 5 * 1024**3
    max_page_size: int = 10_000

    @classmethod
    def from_settings(cls, settings: Settings, *, auth: bool = False) -> ServerOptions:
        return cls(
            auth=auth,
            max_body_bytes=settings.server_max_body_bytes,
            max_artifact_bytes=settings.server_max_artifact_bytes,
            max_page_size=settings.server_max_page_size,
        )


def json_response(
    body: object, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, headers=headers, media_type="application/json"
    )


def error_response(exc: LooplineError) -> Response:
    """The one JSON error body, on native and MLflow routes alike (MLflow's shape)."""
    headers = {"x-loopline-error-code": exc.code}
    if exc.http_status == 401:
        headers["www-authenticate"] = 'Basic realm="loopline", Bearer'
    return json_response({"error_code": exc.code, "message": exc.message}, exc.http_status, headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(
    settings: Settings | None = None,
    options: ServerOptions | None = None,
    *,
    workspace: Workspace | None = None,
) -> FastAPI:
    """The server app over ``workspace`` (or one opened from ``settings``)."""
    owned = workspace is None
    if workspace is None:
        if settings is None:
            raise ValueError("create_app needs settings or a workspace")
        # The server's own stores: never a remote tracking URI, whatever the environment says.
        workspace = Workspace(settings.model_copy(update={"tracking_uri": None}))
    options = options or ServerOptions.from_settings(workspace.settings)
    state = ServerState(workspace, options)
    metrics = RequestMetrics()

    app = FastAPI(
        title="Loopline",
        version=__version__,
        description=(
            "Loopline's native REST API. The MLflow REST protocol is served too, under "
            "/api/2.0/mlflow and /api/2.0/mlflow-artifacts (see docs/server.md)."
        ),
    )
    app.state.loopline = state

    @app.exception_handler(LooplineError)
    async def _loopline_error(request: Request, exc: LooplineError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        from loopline.errors import InvalidInput

        return error_response(InvalidInput(_validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown routes and methods get the same JSON body as every other error.
        code = {404: "ENDPOINT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
            exc.status_code, "BAD_REQUEST"
        )
        message = (
            f"{request.method} {request.url.path} is not served here"
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        return json_response(
            {"error_code": code, "message": message},
            exc.status_code,
            {"x-loopline-error-code": code, **(exc.headers or {})},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(LooplineError("internal server error; see the server log"))

    @app.middleware("http")
    async def _limits_and_audit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if (
            length is not None
            and length.isdigit()
            and int(length) > options.max_body_bytes
            and not state.is_upload(request)
        ):
            await drain(request)
            return error_response(
                PayloadTooLarge(
                    f"request body of {int(length)} bytes is over the limit of "
                    f"{options.max_body_bytes} (server_max_body_bytes)"
                )
            )
        idempotency = state.idempotency_scope(request)
        if idempotency is not None:
            replay = await run_in_threadpool(state.recall, *idempotency)
            if replay is not None:
                status, body = replay
                return Response(body, status_code=status, media_type="application/json")
        response = await call_next(request)
        if idempotency is not None and 200 <= response.status_code < 300:
            body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
            await run_in_threadpool(state.remember, *idempotency, response.status_code, body)
            response = Response(
                body,
                status_code=response.status_code,
                headers={k: v for k, v in response.headers.items() if k != "content-length"},
            )
        if request.method in AUDITED_METHODS:
            await state.audit(request, response.status_code)
        return response

    app.middleware("http")(metrics.middleware)

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: the metadata database and blob store answer",
        responses={503: {"description": "A backing store cannot be reached"}},
    )
    def readyz() -> Response:
        try:
            with workspace.database.read() as conn:
                conn.execute(text("SELECT 1"))
            workspace.blobs.exists("0" * 64)
        except Exception as exc:  # any failure means "not ready", never a crash
            log.warning("not ready: %s", exc)
            return json_response({"status": "unavailable", "message": type(exc).__name__}, 503)
        return json_response({"status": "ok"})

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    def prometheus_metrics() -> Response:
        return metrics.render()

    from loopline.server import (
        admin,
        mlflow_api,
        mlflow_artifacts,
        native,
        native_events,
        native_registry,
        native_schedules,
    )

    app.include_router(native.router)
    app.include_router(native_events.router)
    app.include_router(native_registry.router)
    app.include_router(native_schedules.router)
    app.include_router(admin.router)
    app.include_router(mlflow_api.router)
    app.include_router(mlflow_artifacts.router)

    if owned:
        app.router.on_shutdown.append(workspace.close)
    return app


def app_from_environment() -> FastAPI:
    """Uvicorn factory for worker processes: settings come from ``LOOPLINE_*`` variables
    (``loopline server`` sets them), the auth switch from ``LOOPLINE_SERVER_AUTH``."""
    import os

    from loopline.config import load_settings

    settings = load_settings({}).settings
    auth = os.environ.get("LOOPLINE_SERVER_AUTH", "") == "1"
    return create_app(settings, ServerOptions.from_settings(settings, auth=auth))
