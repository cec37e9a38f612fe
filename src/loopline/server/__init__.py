"""The Loopline server: a stateless FastAPI app over a workspace's stores.

It speaks Loopline's native REST API (``/api/v1``, described at ``/openapi.json``) and the MLflow
REST protocol (``/api/2.0/mlflow``, ``/api/2.0/mlflow-artifacts``), so the official MLflow
client works against it unchanged.
"""

from loopline.server.app import ServerOptions, create_app

__all__ = ["ServerOptions", "create_app"]
