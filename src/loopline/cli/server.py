"""``loopline server``: share a workspace's stores over HTTP (native API and MLflow protocol).

The process is stateless: everything lives in the metadata database and the blob store, so any
number of workers or replicas can serve the same stores. Start-up work that must happen once
(migrations, the first admin) runs here, before uvicorn forks its workers.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli.context import state
from loopline.errors import InvalidInput

if TYPE_CHECKING:  # imported when the command runs, not to print --help
    from loopline.config import Settings

__all__ = ["server", "settings_environment"]

# Settings a server worker never needs: the client side of a remote connection, and the first
# admin's password (used once, below, by the parent process only).
_NOT_EXPORTED = frozenset(
    {"home", "tracking_uri", "tracking_token", "tracking_username", "tracking_password"}
    | {"admin_password"}
)


class LogLevel(StrEnum):
    """uvicorn's levels, less ``trace``: that one logs request headers, credentials included."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def settings_environment(settings: Settings, *, auth: bool) -> dict[str, str]:
    """``LOOPLINE_*`` variables that make :func:`loopline.server.app.app_from_environment`
    resolve exactly ``settings`` in a worker process, whatever else its environment holds."""
    from pydantic import SecretStr

    from loopline.config import ENV_PREFIX

    env = {f"{ENV_PREFIX}HOME": str(settings.home), f"{ENV_PREFIX}SERVER_AUTH": "1" if auth else ""}
    for name in type(settings).model_fields:
        if name in _NOT_EXPORTED:
            continue
        value: Any = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, tuple):  # structured settings travel as JSON
            value = json.dumps([v.model_dump(mode="json") for v in value])
        env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env


def _prepare(settings: Settings, auth: bool) -> str | None:
    """Migrate the database, check the blob store and, with auth, make sure an admin exists.
    Returns the generated admin password, if one was generated."""
    from loopline.access import AccessService
    from loopline.store.sql_access import SqlAccessStore
    from loopline.workspace import Workspace

    with Workspace(settings) as ws:
        ws.store  # noqa: B018 - opening migrates the schema and names the workspace
        ws.blobs  # noqa: B018 - creates the blob directory / reaches the bucket now, not later
        if not auth:
            return None
        access = AccessService(SqlAccessStore(ws.database), ws.events)
        password = settings.admin_password.get_secret_value() if settings.admin_password else None
        return access.ensure_admin(password)


def server(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Metadata store URI the server serves (overrides the global --store and "
            "LOOPLINE_STORE_URI), e.g. postgresql://user@db/loopline.",
            show_default=False,
        ),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            help="Blob store: a directory or s3://bucket/prefix (overrides the global "
            "--artifacts and LOOPLINE_ARTIFACT_URI).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option(help="Interface to listen on; 0.0.0.0 for every interface."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port to listen on.")] = 5000,
    timeout_keep_alive: Annotated[
        int, typer.Option(min=1, help="Seconds an idle keep-alive connection stays open.")
    ] = 5,
    timeout_graceful_shutdown: Annotated[
        int,
        typer.Option(min=0, help="Seconds requests in flight get to finish after SIGTERM."),
    ] = 30,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes. Workers share nothing but the stores, so more workers "
            "serve more concurrent clients.",
        ),
    ] = 1,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth/--no-auth",
            help="Require a user name and password or an API token on every API route "
            "(/healthz, /readyz and /metrics stay open). On first start creates user 'admin' "
            "with LOOPLINE_ADMIN_PASSWORD, or a random password printed once.",
        ),
    ] = False,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Largest JSON request body accepted (env LOOPLINE_SERVER_MAX_BODY_BYTES; "
            "default 16 MiB).",
            show_default=False,
        ),
    ] = None,
    max_artifact_bytes: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Largest artifact file accepted on upload (env "
            "LOOPLINE_SERVER_MAX_ARTIFACT_BYTES; default 5 GiB).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        LogLevel, typer.Option(case_sensitive=False, help="uvicorn's log level.")
    ] = LogLevel.info,
) -> None:
    """Serve this workspace over HTTP to Loopline and MLflow clients.

    Loopline's REST API is under /api/v1 (described at /openapi.json), the MLflow REST
    protocol under /api/2.0/mlflow; /healthz, /readyz and /metrics are for operators.

    Point clients at it with LOOPLINE_TRACKING_URI=http://HOST:PORT (the Loopline client and
    CLI) or MLFLOW_TRACKING_URI=http://HOST:PORT (the MLflow client); with --auth add
    LOOPLINE_TRACKING_TOKEN / MLFLOW_TRACKING_TOKEN or the matching _USERNAME and _PASSWORD.
    Stop it with Ctrl-C or SIGTERM: requests in flight finish first.
    """
    import uvicorn

    from loopline.server.app import ServerOptions, create_app

    flags = dict(state(ctx).flags)
    for name, value in (
        ("store_uri", store),
        ("artifact_uri", artifacts),
        ("server_max_body_bytes", max_body_bytes),
        ("server_max_artifact_bytes", max_artifact_bytes),
    ):
        if value is not None:
            flags[name] = value
    # The server serves its own stores: a LOOPLINE_TRACKING_URI in the operator's shell (there
    # to reach some other server) must not turn it into a client of that one.
    from loopline.config import load_settings, mask_uri

    settings = load_settings(flags).settings.model_copy(update={"tracking_uri": None})
    if workers > 1 and settings.store_uri.startswith("sqlite:///:memory:"):
        raise InvalidInput("--workers: an in-memory SQLite store cannot be shared by workers")

    generated = _prepare(settings, auth)
    if generated is not None:
        # Printed this once and never logged: only its scrypt hash is stored.
        typer.echo(
            f"created user 'admin' with password {generated}; "
            "change it with 'loopline users set-password admin'"
        )
    shown_host = f"[{host}]" if ":" in host else host
    typer.echo(
        f"Loopline server on http://{shown_host}:{port} (auth {'on' if auth else 'off'}, "
        f"{workers} worker{'s' if workers > 1 else ''}; store {mask_uri(settings.store_uri)}, "
        f"blobs {mask_uri(settings.artifact_uri)})"
    )

    # Idle keep-alive connections close after this long; on SIGTERM, requests in flight get
    # this long to finish before the process exits.
    timeouts = {
        "timeout_keep_alive": timeout_keep_alive,
        "timeout_graceful_shutdown": timeout_graceful_shutdown,
    }
    if workers == 1:
        app = create_app(settings, ServerOptions.from_settings(settings, auth=auth))
        uvicorn.run(app, host=host, port=port, log_level=log_level.value, **timeouts)
        return
    # Workers are separate processes that import the app by name: hand them the resolved
    # settings through the environment, which app_from_environment reads.
    os.environ.update(settings_environment(settings, auth=auth))
    uvicorn.run(
        "loopline.server.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level.value,
        **timeouts,
    )
