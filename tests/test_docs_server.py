"""The server's endpoint tables in docs/ list exactly the routes the app serves.

docs/mlflow.md holds one table row per MLflow route (``/api/2.0/...``) and docs/server.md one per
native route (``/api/v1/...``), each as ``| `METHOD` | `/path` | ...``. Both directions are
checked: a route added without a row fails, and so does a row left behind by a removed route.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI

from loopline.config import Settings
from loopline.server import create_app
from loopline.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
MLFLOW_DOC = ROOT / "docs" / "mlflow.md"
SERVER_DOC = ROOT / "docs" / "server.md"

_ROW = re.compile(r"^\|\s*`(?P<method>[A-Z]+)`\s*\|\s*`(?P<path>/[^`]*)`\s*\|", re.M)
_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """``(method, path)`` of every route, with path converters dropped (``{path:path}`` is
    documented as ``{path}``) and the implicit ``HEAD`` of ``GET`` routes left out."""
    try:  # FastAPI >= 0.16x keeps included routers as branches; this walks into them
        from fastapi.routing import iter_route_contexts

        routes = [(r.path, r.methods) for r in iter_route_contexts(app.routes)]
    except ImportError:  # older FastAPI: included routes are copied into app.routes
        routes = [(r.path, getattr(r, "methods", None)) for r in app.routes]
    return {
        (method, _CONVERTER.sub(r"{\1}", path))
        for path, methods in routes
        for method in methods or ()
        if method != "HEAD"
    }


def documented_routes(doc: Path, prefix: str) -> set[tuple[str, str]]:
    rows = _ROW.finditer(doc.read_text(encoding="utf-8"))
    return {(m["method"], m["path"]) for m in rows if m["path"].startswith(prefix)}


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    home = tmp_path_factory.mktemp("docs-server")
    with Workspace(Settings.for_home(home)) as workspace:
        return served_routes(create_app(workspace=workspace))


def _only(routes: set[tuple[str, str]], prefix: str) -> set[tuple[str, str]]:
    return {(method, path) for method, path in routes if path.startswith(prefix)}


def test_mlflow_doc_lists_exactly_the_mlflow_routes_served(routes: set[tuple[str, str]]) -> None:
    """Every /api/2.0/ route has a row in docs/mlflow.md, and every row is a served route."""
    served = _only(routes, "/api/2.0/")
    documented = documented_routes(MLFLOW_DOC, "/api/2.0/")
    assert served - documented == set(), "served but without a row in docs/mlflow.md"
    assert documented - served == set(), "rows in docs/mlflow.md that the app does not serve"


def test_server_doc_lists_exactly_the_native_routes_served(routes: set[tuple[str, str]]) -> None:
    """Every /api/v1/ route has a row in docs/server.md, and every row is a served route."""
    served = _only(routes, "/api/v1/")
    documented = documented_routes(SERVER_DOC, "/api/v1/")
    assert served - documented == set(), "served but without a row in docs/server.md"
    assert documented - served == set(), "rows in docs/server.md that the app does not serve"


def test_the_route_walk_sees_routes_of_included_routers(routes: set[tuple[str, str]]) -> None:
    """Guards the checks above against a FastAPI change that would hide included routes."""
    assert ("POST", "/api/2.0/mlflow/runs/create") in routes
    assert ("PUT", "/api/v1/runs/{run_id}/artifacts/{path}") in routes
    assert len(_only(routes, "/api/2.0/")) > 50
