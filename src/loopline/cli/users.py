"""``loopline users``, ``tokens`` and ``permissions``: who may use a shared server, and how.

These run in-process on the workspace's database, for an operator on the server machine (or
anyone with the database URI); over HTTP the same operations are the ``/api/v1`` admin routes.
Both call :class:`~loopline.access.AccessService`, so the rules are the same.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from loopline.access.entities import ALL_USERS, Role
from loopline.cli.context import console, err_console, workspace
from loopline.errors import InvalidInput

if TYPE_CHECKING:  # imported when a command runs, not to print --help
    from loopline.access import AccessService

__all__ = ["access_service", "permissions_app", "tokens_app", "users_app"]

users_app = typer.Typer(
    help="Users of a server started with --auth: create, list, disable, set passwords.",
    no_args_is_help=True,
)
tokens_app = typer.Typer(
    help="API tokens: what scripts and clients send as 'Authorization: Bearer'.",
    no_args_is_help=True,
)
permissions_app = typer.Typer(
    help="Roles (reader, editor, admin) of users on experiments and registered models.",
    no_args_is_help=True,
)


def access_service(ctx: typer.Context) -> AccessService:
    """The access rules over this workspace's database (migrated on open)."""
    from loopline.access import AccessService
    from loopline.store.sql_access import SqlAccessStore

    ws = workspace(ctx)
    return AccessService(SqlAccessStore(ws.database), ws.events)


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _read_password(from_stdin: bool) -> str:
    """From the first line of stdin (for scripts), else a hidden prompt asked twice."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise InvalidInput("--password-stdin: stdin held no password")
        return line
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of stdin instead of prompting.",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


# -- users --------------------------------------------------------------------------------------
@users_app.command("create")
def create_user(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Letters, digits, '_', '.', '@', '-'.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="A global admin: every role on every object.")
    ] = False,
    password_stdin: PasswordStdin = False,
    no_password: Annotated[
        bool,
        typer.Option(
            "--no-password", help="A user that signs in only with API tokens (e.g. for CI)."
        ),
    ] = False,
) -> None:
    """Create a user. The password is prompted for (twice, never echoed) unless given on
    stdin."""
    if no_password and password_stdin:
        raise InvalidInput("give --password-stdin or --no-password, not both")
    password = None if no_password else _read_password(password_stdin)
    user = access_service(ctx).create_user(name, password, admin=admin)
    console.print(f"created user {user.name!r}" + (" (admin)" if user.is_admin else ""))


@users_app.command("list")
def list_users(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List users: name, admin flag, disabled flag and creation time."""
    users = access_service(ctx).list_users()
    if as_json:
        for u in users:
            row = {
                "name": u.name,
                "is_admin": u.is_admin,
                "disabled": u.disabled,
                "created_ms": u.created_ms,
            }
            console.print(json.dumps(row, sort_keys=True), soft_wrap=True)
        return
    table = Table("name", "admin", "disabled", "created (UTC)")
    for u in users:
        table.add_row(
            u.name, "yes" if u.is_admin else "", "yes" if u.disabled else "", _when(u.created_ms)
        )
    console.print(table)


@users_app.command("disable")
def disable_user(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Refuse the user's password and every token from the next request on."""
    access_service(ctx).set_disabled(name, True)
    console.print(f"user {name!r} disabled; 'loopline users enable {name}' lets them back in")


@users_app.command("enable")
def enable_user(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Let a disabled user sign in again (their unrevoked tokens work again too)."""
    access_service(ctx).set_disabled(name, False)
    console.print(f"user {name!r} enabled")


@users_app.command("set-password")
def set_password(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password (prompted twice, never echoed, unless given on stdin)."""
    access = access_service(ctx)
    access.get_user(name)  # fail on a typo before asking for a password
    access.set_password(name, _read_password(password_stdin))
    console.print(f"password of user {name!r} changed")


# -- tokens -------------------------------------------------------------------------------------
@tokens_app.command("create")
def create_token(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[
        str, typer.Option("--name", help="What the token is for, e.g. ci or laptop.")
    ] = "default",
) -> None:
    """Create an API token and print its secret: the only time it is shown. The secret alone
    goes to stdout, so TOKEN=$(loopline tokens create ci) works."""
    token, secret = access_service(ctx).create_token(user, name)
    console.print(secret, soft_wrap=True)
    err_console.print(
        f"token {token.token_id} ({token.name!r}) for user {user!r}. Copy the secret now: it is "
        "stored only hashed and cannot be shown again. Use it as LOOPLINE_TRACKING_TOKEN or "
        "MLFLOW_TRACKING_TOKEN.",
        soft_wrap=True,
    )


@tokens_app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    as_json: AsJson = False,
) -> None:
    """List tokens (never their secrets: the last 4 characters tell them apart)."""
    access = access_service(ctx)
    if user is not None:
        access.get_user(user)
    tokens = access.list_tokens(user)
    if as_json:
        for t in tokens:
            row = {
                "token_id": t.token_id,
                "user": t.user_name,
                "name": t.name,
                "created_ms": t.created_ms,
                "revoked_ms": t.revoked_ms,
                "last4": t.last4,
            }
            console.print(json.dumps(row, sort_keys=True), soft_wrap=True)
        return
    table = Table("id", "user", "name", "secret", "created (UTC)", "revoked (UTC)")
    for t in tokens:
        table.add_row(
            t.token_id,
            t.user_name,
            t.name,
            f"...{t.last4}",
            _when(t.created_ms),
            _when(t.revoked_ms),
        )
    console.print(table)


@tokens_app.command("revoke")
def revoke_token(
    ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="From 'tokens list'.")]
) -> None:
    """Revoke a token: the next request that presents it is refused."""
    token = access_service(ctx).revoke_token(token_id)
    console.print(f"token {token.token_id} of user {token.user_name!r} revoked")


# -- permissions --------------------------------------------------------------------------------
def _object(experiment: str | None, model: str | None, *, required: bool) -> tuple[str, str]:
    """``(kind, id)`` from the --experiment / --model pair; exactly one when required."""
    if experiment is not None and model is not None:
        raise InvalidInput("give --experiment or --model, not both")
    if experiment is not None:
        return "experiment", experiment
    if model is not None:
        return "registered_model", model
    if required:
        raise InvalidInput("name the object: --experiment ID or --model NAME")
    return "", ""


Experiment = Annotated[
    str | None,
    typer.Option("--experiment", help="Experiment id ('0' is Default).", show_default=False),
]
Model = Annotated[
    str | None, typer.Option("--model", help="Registered model name.", show_default=False)
]
UserArg = Annotated[str, typer.Argument(help=f"A user name, or '{ALL_USERS}' for every user.")]


@permissions_app.command("grant")
def grant(
    ctx: typer.Context,
    user: UserArg,
    role: Annotated[str, typer.Option("--role", help="reader, editor or admin.")],
    experiment: Experiment = None,
    model: Model = None,
) -> None:
    """Give USER a role on one experiment or registered model (replacing any role they had
    there). Readers read; editors also log runs and versions; admins also delete and grant."""
    kind, object_id = _object(experiment, model, required=True)
    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise InvalidInput(f"--role: {exc}") from None
    access_service(ctx).grant(user, kind, object_id, parsed)
    who = "every user" if user == ALL_USERS else f"user {user!r}"
    console.print(f"{who} is {parsed} on {kind.replace('_', ' ')} {object_id!r}")


@permissions_app.command("revoke")
def revoke(
    ctx: typer.Context, user: UserArg, experiment: Experiment = None, model: Model = None
) -> None:
    """Remove USER's role on one experiment or registered model."""
    kind, object_id = _object(experiment, model, required=True)
    access_service(ctx).grant(user, kind, object_id, None)
    console.print(f"{user!r} has no role on {kind.replace('_', ' ')} {object_id!r} any more")


@permissions_app.command("list")
def list_permissions(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's roles.")] = None,
    experiment: Experiment = None,
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """List grants, filtered by user and/or object. Global admins hold every role without
    grants and are not listed."""
    kind, object_id = _object(experiment, model, required=False)
    grants = access_service(ctx).list_grants(user, kind or None, object_id or None)
    if as_json:
        for g in grants:
            row = {
                "user": g.user_name,
                "object_kind": g.object_kind,
                "object_id": g.object_id,
                "role": str(g.role),
            }
            console.print(json.dumps(row, sort_keys=True), soft_wrap=True)
        return
    table = Table("user", "object", "role")
    for g in grants:
        table.add_row(g.user_name, f"{g.object_kind}:{g.object_id}", str(g.role))
    console.print(table)
