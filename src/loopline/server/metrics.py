"""Prometheus metrics: request counts, latency and errors per route.

Each worker process keeps its own registry (``/metrics`` answers for the worker that serves the
scrape); a stateless server scales by replicas, and Prometheus sums what it scrapes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["RequestMetrics"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "loopline_http_requests_total",
            "HTTP requests handled, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "loopline_http_request_duration_seconds",
            "Time to produce the response head, by route template and method.",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "loopline_http_errors_total",
            "Responses with status >= 400, by route template and error code.",
            ["route", "code"],
            registry=self.registry,
        )

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        # The route template, not the raw path: run ids in paths would explode the label set.
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        method = request.method
        self.latency.labels(template, method).observe(time.perf_counter() - start)
        self.requests.labels(template, method, str(response.status_code)).inc()
        if response.status_code >= 400:
            code = response.headers.get("x-loopline-error-code", str(response.status_code))
            self.errors.labels(template, code).inc()
        return response

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
