"""``loopline serve``: one model over HTTP, the minimal serving endpoint.

The model is resolved, verified and loaded once, in this process, before uvicorn starts: a bad
URI or a tampered file fails here with one clear line, not in every worker. A model URI is
copied out of the workspace into a temporary directory that workers load from and that is
removed when the server stops; a model directory is served in place and needs no workspace.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from loopline.cli.context import console, workspace
from loopline.cli.server import LogLevel

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="A model directory, or a model URI: models:/NAME@ALIAS, models:/NAME/VERSION, "
            "runs:/RUN_ID/PATH (read from the workspace).",
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Interface to listen on; 0.0.0.0 for every interface.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port to listen on.")] = 8080,
    name: Annotated[
        str | None,
        typer.Option(
            help="The name clients use in /v2/models/NAME (default: the registered model's "
            "name, or the directory's).",
            show_default=False,
        ),
    ] = None,
    model_version: Annotated[
        str | None,
        typer.Option(
            "--model-version",
            help="The version reported to clients (default: the registered version, if any).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes, each with its own copy of the model.")
    ] = 1,
    log_level: Annotated[
        LogLevel, typer.Option(case_sensitive=False, help="uvicorn's log level.")
    ] = LogLevel.info,
) -> None:
    """Serve one model: Open Inference Protocol v2 under /v2 and MLflow's /invocations.

    This is the minimal serving endpoint: one model per process, no micro-batching, no
    canary or shadow routing yet. Routes: GET /v2/health/live, /v2/health/ready, /v2,
    /v2/models/NAME, /v2/models/NAME/ready; POST /v2/models/NAME/infer; POST /invocations;
    GET /ping. Stop it with Ctrl-C or SIGTERM.

    Example: loopline serve models:/fraud@champion --port 8080
    """
    import uvicorn

    from loopline.serving.app import ENV_MODEL_DIR, ENV_NAME, ENV_VERSION, create_serving_app
    from loopline.serving.model import MODEL_URI_SCHEMES, load_served_model, locate_model

    with tempfile.TemporaryDirectory(prefix="loopline-serve-") as scratch:
        # Only a URI needs the workspace: serving a directory must not create one in cwd.
        ws = workspace(ctx) if model.startswith(MODEL_URI_SCHEMES) else None
        files = locate_model(model, Path(scratch), ws)
        served = load_served_model(
            files.directory, name or files.name, model_version or files.version
        )
        shown_host = f"[{host}]" if ":" in host else host
        version = f" version {served.version}" if served.version else ""
        console.print(
            f"Serving model {served.name!r}{version} on http://{shown_host}:{port} "
            f"({workers} worker{'s' if workers > 1 else ''}): "
            f"POST /v2/models/{served.name}/infer, POST /invocations",
            soft_wrap=True,
        )
        if workers == 1:
            app = create_serving_app(served)
            uvicorn.run(app, host=host, port=port, log_level=log_level.value)
            return
        os.environ.update(
            {
                ENV_MODEL_DIR: str(files.directory.resolve()),
                ENV_NAME: served.name,
                ENV_VERSION: served.version or "",
            }
        )
        uvicorn.run(
            "loopline.serving.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level.value,
        )
