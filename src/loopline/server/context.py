"""Per-process server state and the per-request context every route receives.

Authentication happens once per request, in :func:`request_context`; routes then ask the
context for the service they need and for the role they need on an object. With auth off every
check passes and the caller is the server's configured actor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from loopline.access import AccessService, Principal, Role
from loopline.entities import NewEvent
from loopline.errors import InvalidInput, Unauthenticated
from loopline.events import EventLog
from loopline.registry.service import RegistryService
from loopline.store.sql_access import SqlAccessStore
from loopline.tracking.service import TrackingService
from loopline.workspace import Workspace

log = logging.getLogger("loopline.server")

if TYPE_CHECKING:
    from loopline.server.app import ServerOptions

__all__ = ["AUDITED_METHODS", "RequestContext", "ServerState", "page_size", "request_context"]

AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POST routes that only read (MLflow sends searches as POST); they are not audited.
_READ_ONLY_SUFFIXES = ("/search", "/get-latest-versions", "/runs/search")
# POST routes that create a new object; a retried request must get the first answer back.
_CREATES = (
    "/api/v1/experiments",
    "/api/v1/runs",
    "/api/v1/registered-models",
    "/versions",  # POST /api/v1/registered-models/{name}/versions
    "/mlflow/experiments/create",
    "/mlflow/runs/create",
    "/mlflow/logged-models",
    "/mlflow/model-versions/create",
    "/mlflow/registered-models/create",
)


class _LruDict(OrderedDict[str, str]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.lock = threading.Lock()

    def remember(self, key: str, value: str) -> None:
        with self.lock:
            self[key] = value
            self.move_to_end(key)
            if len(self) > self.size:
                self.popitem(last=False)

    def recall(self, key: str) -> str | None:
        with self.lock:
            return self.get(key)


class ServerState:
    """What one server process holds: the workspace (pools, blob store) and small caches of
    facts that never change (which experiment a run belongs to)."""

    def __init__(self, workspace: Workspace, options: ServerOptions) -> None:
        self.workspace = workspace
        self.options = options
        self._run_experiment = _LruDict(100_000)
        self._services: dict[str, TrackingService] = {}
        self._registries: dict[str, RegistryService] = {}
        self._lock = threading.Lock()

    @cached_property
    def access(self) -> AccessService:
        return AccessService(SqlAccessStore(self.workspace.database), self.workspace.events)

    def tracking_for(self, actor: str) -> TrackingService:
        """The tracking service acting as ``actor`` (events and default run owner)."""
        with self._lock:
            service = self._services.get(actor)
            if service is None:
                base = self.workspace.tracking
                service = TrackingService(
                    base.store,
                    base.blobs,
                    EventLog(self.workspace.store, actor),
                    base.lineage,
                    actor,
                )
                if len(self._services) > 1000:
                    self._services.clear()
                self._services[actor] = service
            return service

    def registry_for(self, actor: str, principal: Principal | None = None) -> RegistryService:
        """The registry service acting as ``actor``; with auth on, approvals check the
        ``principal``'s role on each model."""
        key = f"{actor}\x00{principal.is_admin if principal else '-'}"
        with self._lock:
            service = self._registries.get(key)
            if service is None:
                role_of = None
                if principal is not None:
                    access = self.access

                    def role_of(name: str, who: Principal = principal) -> str | None:
                        role = access.role_on(who, "registered_model", name)
                        return str(role) if role is not None else None

                service = self.workspace.registry.acting_as(
                    actor, EventLog(self.workspace.store, actor), role_of
                )
                if len(self._registries) > 1000:
                    self._registries.clear()
                self._registries[key] = service
            return service

    def experiment_of_run(self, run_id: str) -> str:
        known = self._run_experiment.recall(run_id)
        if known is None:
            known = self.workspace.tracking.get_run(run_id).info.experiment_id
            self._run_experiment.remember(run_id, known)
        return known

    def idempotency_scope(self, request: Request) -> tuple[str, str] | None:
        """(key, scope) when the request creates something and names an ``Idempotency-Key``.

        Only creates are recorded: every other write (batches, tags, updates) is already
        idempotent in the store, so replaying it changes nothing. The scope binds the key to
        the route and the caller's credentials, so one client can never replay another's.
        """
        key = request.headers.get("idempotency-key")
        if not key or request.method != "POST" or len(key) > 128:
            return None
        path = request.url.path
        if not path.endswith(_CREATES):
            return None
        caller = hashlib.sha256(request.headers.get("authorization", "").encode()).hexdigest()[:16]
        return key, f"{caller}:{path}"[:256]

    def recall(self, key: str, scope: str) -> tuple[int, bytes] | None:
        return self.access.store.recall_response(key, scope)

    def remember(self, key: str, scope: str, status: int, body: bytes) -> None:
        self.access.store.remember_response(key, scope, status, body)

    @staticmethod
    def is_upload(request: Request) -> bool:
        """Artifact uploads stream and are limited by ``max_artifact_bytes`` instead."""
        return request.method == "PUT" and "/artifacts/" in request.url.path

    def audit_record(self, request: Request, status: int) -> NewEvent | None:
        """The audit event of a finished request (None for reads sent as POST and for routes
        outside the API). The action is ``audit``; details hold method, path, status and the
        client address."""
        path = request.url.path
        if path.endswith(_READ_ONLY_SUFFIXES) or not path.startswith("/api/"):
            return None
        state = request.scope.get("state", {})
        actor = state.get("actor") or (
            "anonymous" if self.options.auth else self.workspace.settings.actor
        )
        route = request.scope.get("route")
        # Routes name their object; otherwise the route template (never raw user input).
        kind, object_id = state.get("audit_object", ("route", getattr(route, "path", "unmatched")))
        details = {
            "method": request.method,
            "path": path[:1024].replace("\x00", "\\0"),
            "status": status,
            "client": request.client.host if request.client else "",
        }
        return NewEvent(actor, "audit", kind, str(object_id)[:256], details)

    async def audit(self, request: Request, status: int) -> None:
        """Append the request to the audit log, unless its route already did so inside its own
        transaction (see :meth:`RequestContext.audit_in_transaction`)."""
        if request.scope.get("state", {}).get("audited"):
            return
        record = self.audit_record(request, status)
        if record is None:
            return
        try:
            await run_in_threadpool(self.workspace.store.append_events, [record])
        except Exception:  # the request is done either way; losing its record must be loud
            log.exception(
                "could not write the audit record of %s %s", request.method, request.url.path[:200]
            )


@dataclass
class RequestContext:
    state: ServerState
    principal: Principal | None
    request: Request

    @property
    def actor(self) -> str:
        return self.principal.name if self.principal else self.state.workspace.settings.actor

    @property
    def tracking(self) -> TrackingService:
        return self.state.tracking_for(self.actor)

    @property
    def registry(self) -> RegistryService:
        return self.state.registry_for(self.actor, self.principal)

    @property
    def workspace(self) -> Workspace:
        return self.state.workspace

    @property
    def access(self) -> AccessService:
        return self.state.access

    def audit_object(self, kind: str, object_id: Any) -> None:
        """Name the object this request acts on, for its audit record."""
        self.request.state.audit_object = (kind, str(object_id))

    @contextmanager
    def audit_in_transaction(self) -> Iterator[list[NewEvent]]:
        """For a route whose write takes events: yields the request's audit record (as it
        will read on success) to commit with the write, one transaction instead of two on the
        hottest route. If the write fails, the middleware records the failure as usual."""
        record = self.state.audit_record(self.request, 200)
        yield [record] if record is not None else []
        self.request.state.audited = True

    # -- authorization -------------------------------------------------------------------------
    def require_experiment(self, experiment_id: str, role: Role) -> None:
        if self.principal is not None:
            self.access.require(self.principal, "experiment", str(experiment_id), role)

    def require_run(self, run_id: str, role: Role) -> str:
        """Check ``role`` on the run's experiment; returns the experiment id (or '' when auth
        is off and the look-up is not needed)."""
        if self.principal is None:
            return ""
        experiment_id = self.state.experiment_of_run(run_id)
        self.access.require(self.principal, "experiment", experiment_id, role)
        return experiment_id

    def require_model(self, name: str, role: Role) -> None:
        if self.principal is not None:
            self.access.require(self.principal, "registered_model", name, role)

    def require_admin(self) -> None:
        if self.principal is not None:
            self.access.require_admin(self.principal)

    def readable(self, kind: str) -> set[str] | None:
        """Object ids of ``kind`` the caller may read; ``None`` means no restriction."""
        if self.principal is None:
            return None
        return self.access.readable(self.principal, kind)

    def became_owner(self, kind: str, object_id: str) -> None:
        """The creator of an experiment or model gets the admin role on it."""
        if self.principal is not None and not self.principal.is_admin:
            self.access.grant(self.principal.name, kind, object_id, Role.ADMIN, actor=self.actor)


def _credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer" and value:
        return ("bearer", value)
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated(
                "the Basic credentials are not valid base64 'user:password'"
            ) from None
        return ("basic", decoded)
    raise Unauthenticated(
        "Authorization must be 'Bearer <token>' or 'Basic <base64 user:password>'"
    )


def request_context(request: Request) -> RequestContext:
    """FastAPI dependency: authenticate (when auth is on) and build the request's context."""
    state: ServerState = request.app.state.loopline
    if not state.options.auth:
        return RequestContext(state, None, request)
    creds = _credentials(request)
    if creds is None:
        raise Unauthenticated(
            "this server requires credentials: send 'Authorization: Bearer <token>' "
            "(LOOPLINE_TRACKING_TOKEN / MLFLOW_TRACKING_TOKEN) or HTTP Basic"
        )
    scheme, value = creds
    if scheme == "bearer":
        principal = state.access.authenticate_token(value)
    else:
        name, sep, password = value.partition(":")
        if not sep:
            raise Unauthenticated("Basic credentials must be 'user:password'")
        principal = state.access.authenticate_password(name, password)
    request.state.actor = principal.name
    return RequestContext(state, principal, request)


def page_size(requested: int | None, default: int, state: ServerState) -> int:
    """Clamp a requested page size to the server's maximum; refuse nonsense."""
    if requested is None:
        return min(default, state.options.max_page_size)
    if requested < 1:
        raise InvalidInput(f"max_results must be positive, got {requested}")
    return min(requested, state.options.max_page_size)
