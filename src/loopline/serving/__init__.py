"""Serving one model over HTTP: the minimal endpoint behind ``loopline serve``.

Two wire protocols answer from the same loaded model: the Open Inference Protocol v2 (the
KServe/Triton ``/v2/...`` routes, see :mod:`loopline.serving.oip`) and MLflow's scoring
protocol (``/invocations``, see :mod:`loopline.serving.scoring`). Micro-batching, several
models, canary/shadow routing and the prediction log are later work; they grow here.

    app = create_serving_app("models:/fraud@champion")   # or a model directory
    uvicorn.run(app, port=8080)
"""

from __future__ import annotations

from loopline.serving.app import create_serving_app
from loopline.serving.model import ServedModel, load_served_model

__all__ = ["ServedModel", "create_serving_app", "load_served_model"]
