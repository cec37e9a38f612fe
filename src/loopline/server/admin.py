"""Native admin routes under ``/api/v1``: users, API tokens, permissions and the audit log.

The same operations as ``loopline users|tokens|permissions|audit``, for operators who reach the
server only over HTTP. Routes are thin: authorize, call :class:`~loopline.access.AccessService`
or the event log, shape the answer. With auth off every check passes (a local single user).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from loopline.access import Role
from loopline.access.entities import ApiToken, Grant, User
from loopline.errors import PermissionDenied
from loopline.server.context import RequestContext, page_size, request_context

__all__ = [
    "AuditEventOut",
    "AuditPage",
    "CreateTokenBody",
    "CreateUserBody",
    "NewTokenOut",
    "PermissionBody",
    "PermissionOut",
    "PermissionsOut",
    "TokenOut",
    "TokensOut",
    "UpdateUserBody",
    "UserOut",
    "UsersOut",
    "router",
]

router = APIRouter(prefix="/api/v1", tags=["admin"])
Ctx = Annotated[RequestContext, Depends(request_context)]
_ERRORS = {
    400: {"description": "Invalid input; body names the field: {error_code, message}"},
    401: {"description": "Credentials missing or invalid (auth on)"},
    403: {"description": "The caller lacks the role this needs"},
    404: {"description": "No such user, token or object"},
}
ObjectKind = Literal["experiment", "registered_model"]
RoleName = Literal["reader", "editor", "admin"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- bodies and answers -------------------------------------------------------------------------
class UserOut(BaseModel):
    """A user as the API shows it: never the password hash."""

    name: str
    is_admin: bool
    disabled: bool
    created_ms: int

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            name=user.name,
            is_admin=user.is_admin,
            disabled=user.disabled,
            created_ms=user.created_ms,
        )


class UsersOut(BaseModel):
    users: list[UserOut]


class CreateUserBody(_Body):
    name: str = Field(min_length=1, max_length=128)
    password: str | None = Field(
        default=None, description="At least 8 characters; omit for a token-only user"
    )
    admin: bool = Field(default=False, description="Global admin: every role on every object")


class UpdateUserBody(_Body):
    disabled: bool | None = Field(
        default=None, description="true refuses the user's password and tokens at once"
    )
    password: str | None = Field(default=None, description="A new password (8+ characters)")


class TokenOut(BaseModel):
    """A token without its secret: only the last four characters, to tell tokens apart."""

    token_id: str
    user_name: str
    name: str
    created_ms: int
    revoked_ms: int | None = None
    last4: str

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            token_id=token.token_id,
            user_name=token.user_name,
            name=token.name,
            created_ms=token.created_ms,
            revoked_ms=token.revoked_ms,
            last4=token.last4,
        )


class NewTokenOut(TokenOut):
    secret: str = Field(description="Shown this once; only its hash is stored")


class TokensOut(BaseModel):
    tokens: list[TokenOut]


class CreateTokenBody(_Body):
    name: str = Field(default="default", min_length=1, max_length=128)


class PermissionOut(BaseModel):
    user: str
    object_kind: str
    object_id: str
    role: RoleName

    @classmethod
    def of(cls, grant: Grant) -> PermissionOut:
        return cls(
            user=grant.user_name,
            object_kind=grant.object_kind,
            object_id=grant.object_id,
            role=str(grant.role),  # type: ignore[arg-type]
        )


class PermissionsOut(BaseModel):
    permissions: list[PermissionOut]


class PermissionBody(_Body):
    user: str = Field(min_length=1, max_length=128, description="A user name, or '*' for all")
    object_kind: ObjectKind
    object_id: str = Field(min_length=1, max_length=256)
    role: RoleName | None = Field(description="reader, editor, admin, or null to remove it")


class AuditEventOut(BaseModel):
    id: int
    time_ms: int
    actor: str
    action: str
    object_kind: str
    object_id: str
    method: str | None = None
    path: str | None = None
    status: int | None = None
    client: str | None = None


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_page_token: str | None = Field(
        default=None, description="Pass as after_id to get the next (older) page"
    )


# -- helpers ------------------------------------------------------------------------------------
def _require_self_or_admin(ctx: RequestContext, user_name: str) -> None:
    """A user manages their own tokens; anyone else's needs a global admin."""
    if ctx.principal is not None and ctx.principal.name != user_name:
        ctx.require_admin()


def _require_object_admin(ctx: RequestContext, kind: str, object_id: str) -> None:
    if kind == "experiment":
        ctx.require_experiment(object_id, Role.ADMIN)
    else:
        ctx.require_model(object_id, Role.ADMIN)


# -- users --------------------------------------------------------------------------------------
@router.get("/users", response_model=UsersOut, responses=_ERRORS)
def list_users(ctx: Ctx) -> UsersOut:
    ctx.require_admin()
    return UsersOut(users=[UserOut.of(u) for u in ctx.access.list_users()])


@router.post("/users", response_model=UserOut, responses=_ERRORS)
def create_user(body: CreateUserBody, ctx: Ctx) -> UserOut:
    ctx.audit_object("user", body.name)  # first, so a refused attempt names its target too
    ctx.require_admin()
    user = ctx.access.create_user(body.name, body.password, admin=body.admin, actor=ctx.actor)
    return UserOut.of(user)


@router.patch("/users/{name}", response_model=UserOut, responses=_ERRORS)
def update_user(name: str, body: UpdateUserBody, ctx: Ctx) -> UserOut:
    """Disable or enable a user (effective on their very next request), or set a password."""
    ctx.audit_object("user", name)
    ctx.require_admin()
    user = ctx.access.get_user(name)
    # Disabling first: it is the change that can be refused (the last admin), and then the
    # password must stay as it was.
    if body.disabled is not None:
        user = ctx.access.set_disabled(name, body.disabled, actor=ctx.actor)
    if body.password is not None:
        user = ctx.access.set_password(name, body.password, actor=ctx.actor)
    return UserOut.of(user)


# -- tokens -------------------------------------------------------------------------------------
@router.post("/users/{name}/tokens", response_model=NewTokenOut, responses=_ERRORS)
def create_token(name: str, ctx: Ctx, body: CreateTokenBody | None = None) -> NewTokenOut:
    """A new API token for ``name``; the answer holds the secret, which is never shown again."""
    ctx.audit_object("user", name)
    _require_self_or_admin(ctx, name)
    token, secret = ctx.access.create_token(name, (body or CreateTokenBody()).name, actor=ctx.actor)
    return NewTokenOut(**TokenOut.of(token).model_dump(), secret=secret)


@router.get("/users/{name}/tokens", response_model=TokensOut, responses=_ERRORS)
def list_tokens(name: str, ctx: Ctx) -> TokensOut:
    _require_self_or_admin(ctx, name)
    ctx.access.get_user(name)  # 404 for an unknown user rather than an empty list
    return TokensOut(tokens=[TokenOut.of(t) for t in ctx.access.list_tokens(name)])


@router.delete("/tokens/{token_id}", response_model=TokenOut, responses=_ERRORS)
def revoke_token(token_id: str, ctx: Ctx) -> TokenOut:
    """Revoke a token; the next request that presents it is refused."""
    ctx.audit_object("token", token_id)
    principal = ctx.principal
    if principal is not None and not principal.is_admin:
        own = {t.token_id for t in ctx.access.list_tokens(principal.name)}
        if token_id not in own:
            # Someone else's token or none at all: the same answer, so ids cannot be probed.
            raise PermissionDenied(
                f"user {principal.name!r} may revoke only their own tokens; "
                f"{token_id!r} is not one of them"
            )
    return TokenOut.of(ctx.access.revoke_token(token_id, actor=ctx.actor))


# -- permissions --------------------------------------------------------------------------------
@router.get("/permissions", response_model=PermissionsOut, responses=_ERRORS)
def list_permissions(
    ctx: Ctx,
    object_kind: ObjectKind | None = None,
    object_id: str | None = None,
    user: str | None = None,
) -> PermissionsOut:
    """Grants matching every filter given. A global admin sees all; anyone else sees their own
    grants (``user`` = themselves) or the grants on an object they administer."""
    principal = ctx.principal
    if principal is not None and not principal.is_admin and user != principal.name:
        if object_kind is None or object_id is None:
            raise PermissionDenied(
                "listing permissions needs user=<yourself>, or object_kind and object_id of an "
                "object you hold the admin role on (a global admin may list all)"
            )
        _require_object_admin(ctx, object_kind, object_id)
    grants = ctx.access.list_grants(user, object_kind, object_id)
    return PermissionsOut(permissions=[PermissionOut.of(g) for g in grants])


@router.put("/permissions", response_model=PermissionsOut, responses=_ERRORS)
def set_permission(body: PermissionBody, ctx: Ctx) -> PermissionsOut:
    """Give ``user`` a role on one experiment or registered model (``role: null`` removes it).
    Needs the admin role on that object. Answers with the object's grants afterwards."""
    ctx.audit_object(body.object_kind, body.object_id)
    _require_object_admin(ctx, body.object_kind, body.object_id)
    ctx.access.grant(body.user, body.object_kind, body.object_id, body.role, actor=ctx.actor)
    grants = ctx.access.list_grants(object_kind=body.object_kind, object_id=body.object_id)
    return PermissionsOut(permissions=[PermissionOut.of(g) for g in grants])


# -- audit --------------------------------------------------------------------------------------
@router.get("/audit", response_model=AuditPage, responses=_ERRORS)
def list_audit(
    ctx: Ctx,
    actor: str | None = None,
    object_kind: str | None = None,
    object_id: str | None = None,
    after_id: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Only events older than this id")
    ] = 0,
    max_results: Annotated[int | None, Query(ge=1)] = None,
) -> AuditPage:
    """Every mutating API request, newest first: who, from where, what, and the status."""
    ctx.require_admin()
    size = min(page_size(max_results, 100, ctx.state), 10_000)  # the event store's own cap
    events = ctx.workspace.events.list(
        action="audit",
        actor=actor,
        object_kind=object_kind,
        object_id=object_id,
        after_id=after_id,
        limit=size,
        newest_first=True,
    )
    out = [
        AuditEventOut(
            id=e.id,
            time_ms=e.time_ms,
            actor=e.actor,
            action=e.action,
            object_kind=e.object_kind,
            object_id=e.object_id,
            method=e.details.get("method"),
            path=e.details.get("path"),
            status=e.details.get("status"),
            client=e.details.get("client"),
        )
        for e in events
    ]
    token = str(events[-1].id) if len(events) == size and events else None
    return AuditPage(events=out, next_page_token=token)
