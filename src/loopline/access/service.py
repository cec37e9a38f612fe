"""Authentication and authorization rules.

Passwords are stored as scrypt hashes; API tokens as SHA-256 of a 256-bit random secret (a
slow hash adds nothing to a secret that long, and a fast one keeps every request cheap). The
secret is returned once, at creation, and never stored. Every check reads the database, so
disabling a user or revoking a token takes effect on the very next request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import uuid

from loopline.access.entities import ALL_USERS, ApiToken, Grant, Principal, Role, User
from loopline.access.store import AccessStore
from loopline.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from loopline.events import EventLog

__all__ = ["TOKEN_PREFIX", "AccessService"]

TOKEN_PREFIX = "llt_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
OBJECT_KINDS = ("experiment", "registered_model")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_b64, digest_b64 = stored.split("$", 2)
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessService:
    def __init__(self, store: AccessStore, events: EventLog) -> None:
        self.store = store
        self.events = events
        # (name, sha256 of the password) -> the stored hash it was verified against. Saves a
        # scrypt (~50 ms) per Basic-auth request; a changed password changes the stored hash,
        # so a cached pair never outlives the password it proved.
        self._verified: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    # -- users -----------------------------------------------------------------------------------
    @staticmethod
    def _check_name(name: str) -> str:
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput(
                f"user name {name!r} must be 1-128 characters: letters, digits, '_', '.', '@', "
                "'-', starting with a letter or digit"
            )
        return name

    @staticmethod
    def _check_password(password: str) -> str:
        if not isinstance(password, str) or len(password) < 8:
            raise InvalidInput("password must be at least 8 characters")
        return password

    def create_user(
        self,
        name: str,
        password: str | None = None,
        *,
        admin: bool = False,
        actor: str | None = None,
    ) -> User:
        self._check_name(name)
        hashed = hash_password(self._check_password(password)) if password is not None else None
        user = self.store.create_user(name, hashed, admin)
        self.events.record(actor, "user.created", "user", name, {"admin": admin})
        return user

    def get_user(self, name: str) -> User:
        return self.store.get_user(name)

    def list_users(self) -> list[User]:
        return self.store.list_users()

    def set_password(self, name: str, password: str, *, actor: str | None = None) -> User:
        user = self.store.update_user(
            name, password_hash=hash_password(self._check_password(password))
        )
        self.events.record(actor, "user.password_changed", "user", name)
        return user

    def set_disabled(self, name: str, disabled: bool, *, actor: str | None = None) -> User:
        user = self.store.get_user(name)
        if disabled and user.is_admin and not user.disabled and self.store.count_admins() <= 1:
            raise InvalidInput(f"user {name!r} is the last enabled admin and cannot be disabled")
        user = self.store.update_user(name, disabled=disabled)
        self.events.record(actor, "user.disabled" if disabled else "user.enabled", "user", name)
        return user

    def ensure_admin(self, password: str | None) -> str | None:
        """On a server's first start with auth: create user ``admin`` when no admin exists.
        Returns the generated password when none was supplied (to print once), else None."""
        if self.store.count_admins() > 0:
            return None
        generated = None
        if password is None:
            generated = password = secrets.token_urlsafe(18)
        try:
            self.create_user("admin", password, admin=True, actor="loopline-server")
        except Exception:
            # Another replica won the race; its admin stands.
            if self.store.count_admins() > 0:
                return None
            raise
        return generated

    # -- tokens ----------------------------------------------------------------------------------
    def create_token(
        self, user_name: str, name: str = "default", *, actor: str | None = None
    ) -> tuple[ApiToken, str]:
        """A new token for ``user_name``; the secret is in the returned string only."""
        if not name or len(name) > 128:
            raise InvalidInput("token name must be 1-128 characters")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = self.store.add_token(
            uuid.uuid4().hex[:16], user_name, name, hash_token(secret), secret[-4:]
        )
        self.events.record(actor, "token.created", "user", user_name, {"token_id": token.token_id})
        return token, secret

    def list_tokens(self, user_name: str | None = None) -> list[ApiToken]:
        return self.store.list_tokens(user_name)

    def revoke_token(self, token_id: str, *, actor: str | None = None) -> ApiToken:
        token = self.store.revoke_token(token_id)
        self.events.record(actor, "token.revoked", "user", token.user_name, {"token_id": token_id})
        return token

    # -- authentication --------------------------------------------------------------------------
    def authenticate_token(self, secret: str) -> Principal:
        user = self.store.user_for_token(hash_token(secret))
        if user is None:
            raise Unauthenticated(
                "the API token is not valid (unknown, revoked or its user is disabled)"
            )
        return Principal(user.name, user.is_admin, user.user_id)

    def authenticate_password(self, name: str, password: str) -> Principal:
        try:
            user = self.store.get_user(name)
        except NotFound:
            raise Unauthenticated("user name or password is wrong") from None
        if user.disabled:
            raise Unauthenticated(f"user {name!r} is disabled")
        key = (name, hashlib.sha256(password.encode()).hexdigest())
        with self._lock:
            known = self._verified.get(key)
        if known is None or known != user.password_hash:
            if not verify_password(password, user.password_hash):
                raise Unauthenticated("user name or password is wrong")
            with self._lock:
                if len(self._verified) > 10_000:
                    self._verified.clear()
                self._verified[key] = user.password_hash or ""
        return Principal(user.name, user.is_admin, user.user_id)

    # -- authorization ---------------------------------------------------------------------------
    def grant(
        self,
        user_name: str,
        object_kind: str,
        object_id: str,
        role: Role | str | None,
        *,
        actor: str | None = None,
    ) -> None:
        if object_kind not in OBJECT_KINDS:
            raise InvalidInput(
                f"object kind {object_kind!r} is not one of {', '.join(OBJECT_KINDS)}"
            )
        if user_name != ALL_USERS:
            self.store.get_user(user_name)  # NotFound for a typo
        if isinstance(role, str):
            try:
                role = Role.parse(role)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
        self.store.set_grant(user_name, object_kind, str(object_id), role)
        self.events.record(
            actor,
            "permission.granted" if role is not None else "permission.revoked",
            object_kind,
            str(object_id),
            {"user": user_name, "role": str(role) if role else None},
        )

    def list_grants(
        self,
        user_name: str | None = None,
        object_kind: str | None = None,
        object_id: str | None = None,
    ) -> list[Grant]:
        return self.store.list_grants(user_name, object_kind, object_id)

    def role_on(self, principal: Principal, object_kind: str, object_id: str) -> Role | None:
        if principal.is_admin:
            return Role.ADMIN
        return self.store.best_role(principal.name, object_kind, str(object_id))

    def require(self, principal: Principal, object_kind: str, object_id: str, needed: Role) -> None:
        """PermissionDenied unless the caller holds ``needed`` (or more) on the object. Having
        no role at all is reported the same way: the object's existence is not confirmed."""
        role = self.role_on(principal, object_kind, object_id)
        if role is None or role < needed:
            what = object_kind.replace("_", " ")
            raise PermissionDenied(
                f"user {principal.name!r} needs the {needed} role on {what} {object_id!r}"
                + (f" (has {role})" if role else "")
            )

    def require_admin(self, principal: Principal) -> None:
        if not principal.is_admin:
            raise PermissionDenied(f"user {principal.name!r} is not an admin")

    def readable(self, principal: Principal, object_kind: str) -> set[str] | None:
        """Ids the caller may read; ``None`` means everything (admins)."""
        if principal.is_admin:
            return None
        return self.store.readable_objects(principal.name, object_kind)
