"""The access store contract: users, token hashes, grants and idempotency records."""

from __future__ import annotations

import abc

from loopline.access.entities import ApiToken, Grant, Role, User

__all__ = ["AccessStore"]


class AccessStore(abc.ABC):
    @abc.abstractmethod
    def create_user(self, name: str, password_hash: str | None, is_admin: bool) -> User:
        """AlreadyExists if the name is taken."""

    @abc.abstractmethod
    def get_user(self, name: str) -> User:
        """NotFound if no user has this name."""

    @abc.abstractmethod
    def list_users(self) -> list[User]: ...

    @abc.abstractmethod
    def update_user(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
        is_admin: bool | None = None,
    ) -> User: ...

    @abc.abstractmethod
    def count_admins(self) -> int: ...

    @abc.abstractmethod
    def add_token(
        self, token_id: str, user_name: str, name: str, secret_hash: str, last4: str
    ) -> ApiToken:
        """NotFound if the user does not exist."""

    @abc.abstractmethod
    def user_for_token(self, secret_hash: str) -> User | None:
        """The enabled user owning an unrevoked token with this hash, else None."""

    @abc.abstractmethod
    def list_tokens(self, user_name: str | None = None) -> list[ApiToken]: ...

    @abc.abstractmethod
    def revoke_token(self, token_id: str) -> ApiToken:
        """NotFound if no token has this id."""

    @abc.abstractmethod
    def set_grant(
        self, user_name: str, object_kind: str, object_id: str, role: Role | None
    ) -> None:
        """Grant ``role`` (or remove the grant with ``None``)."""

    @abc.abstractmethod
    def best_role(self, user_name: str, object_kind: str, object_id: str) -> Role | None:
        """The highest role granted to this user or to every user (``*``) on the object."""

    @abc.abstractmethod
    def readable_objects(self, user_name: str, object_kind: str) -> set[str]:
        """Ids of objects of this kind the user (or everyone) holds any role on."""

    @abc.abstractmethod
    def list_grants(
        self,
        user_name: str | None = None,
        object_kind: str | None = None,
        object_id: str | None = None,
    ) -> list[Grant]: ...

    # -- idempotency -----------------------------------------------------------------------------
    @abc.abstractmethod
    def remember_response(self, key: str, scope: str, status: int, body: bytes) -> bool:
        """Store the response of the first request carrying ``key``; False if one was stored
        before (the caller then answers with :meth:`recall_response`)."""

    @abc.abstractmethod
    def recall_response(self, key: str, scope: str) -> tuple[int, bytes] | None: ...

    @abc.abstractmethod
    def forget_responses(self, older_than_ms: int) -> int: ...
