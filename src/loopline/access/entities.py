from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ALL_USERS", "ApiToken", "Grant", "Principal", "Role", "User"]

ALL_USERS = "*"
"""A grant to this user name applies to every user (e.g. editor on the Default experiment)."""


class Role(enum.IntEnum):
    """Ordered: each role can do everything the ones below it can."""

    READER = 1
    EDITOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"role {value!r} is not one of reader, editor, admin") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class User:
    user_id: int
    name: str
    is_admin: bool
    disabled: bool
    created_ms: int
    password_hash: str | None = None


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    user_name: str
    name: str
    created_ms: int
    revoked_ms: int | None = None
    last4: str = ""


@dataclass(frozen=True)
class Grant:
    user_name: str
    object_kind: str
    object_id: str
    role: Role


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    name: str
    is_admin: bool
    user_id: int | None = None
