"""SQL for users, API tokens, grants and idempotency records (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from loopline.access.entities import ALL_USERS, ApiToken, Grant, Role, User
from loopline.access.store import AccessStore
from loopline.errors import AlreadyExists, NotFound
from loopline.store.database import Database, now_ms
from loopline.store.tables import api_tokens, grants, idempotency_keys, users

__all__ = ["SqlAccessStore"]


def _user(row: Any) -> User:
    return User(
        user_id=row.id,
        name=row.name,
        is_admin=bool(row.is_admin),
        disabled=bool(row.disabled),
        created_ms=row.created_ms,
        password_hash=row.password_hash,
    )


def _token(row: Any) -> ApiToken:
    return ApiToken(
        token_id=row.token_id,
        user_name=row.user_name,
        name=row.name,
        created_ms=row.created_ms,
        revoked_ms=row.revoked_ms,
        last4=row.last4,
    )


_TOKEN_COLUMNS = (
    api_tokens.c.token_id,
    users.c.name.label("user_name"),
    api_tokens.c.name,
    api_tokens.c.created_ms,
    api_tokens.c.revoked_ms,
    api_tokens.c.last4,
)


class SqlAccessStore(AccessStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- users -----------------------------------------------------------------------------------
    def create_user(self, name: str, password_hash: str | None, is_admin: bool) -> User:
        try:
            with self.db.write() as conn:
                conn.execute(
                    users.insert().values(
                        name=name,
                        password_hash=password_hash,
                        is_admin=is_admin,
                        disabled=False,
                        created_ms=now_ms(),
                    )
                )
        except SqlIntegrityError:
            raise AlreadyExists(f"user {name!r} already exists") from None
        return self.get_user(name)

    def get_user(self, name: str) -> User:
        with self.db.read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            raise NotFound(f"user {name!r} does not exist")
        return _user(row)

    def list_users(self) -> list[User]:
        with self.db.read() as conn:
            return [_user(r) for r in conn.execute(select(users).order_by(users.c.name))]

    def update_user(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
        is_admin: bool | None = None,
    ) -> User:
        values: dict[str, Any] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if disabled is not None:
            values["disabled"] = disabled
        if is_admin is not None:
            values["is_admin"] = is_admin
        if values:
            with self.db.write() as conn:
                done = conn.execute(update(users).where(users.c.name == name).values(**values))
            if done.rowcount == 0:
                raise NotFound(f"user {name!r} does not exist")
        return self.get_user(name)

    def count_admins(self) -> int:
        with self.db.read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(users)
                    .where(users.c.is_admin.is_(True), users.c.disabled.is_(False))
                ).scalar_one()
            )

    # -- tokens ----------------------------------------------------------------------------------
    def add_token(
        self, token_id: str, user_name: str, name: str, secret_hash: str, last4: str
    ) -> ApiToken:
        user = self.get_user(user_name)
        with self.db.write() as conn:
            conn.execute(
                api_tokens.insert().values(
                    token_id=token_id,
                    user_id=user.user_id,
                    name=name,
                    secret_hash=secret_hash,
                    last4=last4,
                    created_ms=now_ms(),
                )
            )
        return self._get_token(token_id)

    def _get_token(self, token_id: str) -> ApiToken:
        with self.db.read() as conn:
            row = conn.execute(
                select(*_TOKEN_COLUMNS)
                .join(users, users.c.id == api_tokens.c.user_id)
                .where(api_tokens.c.token_id == token_id)
            ).first()
        if row is None:
            raise NotFound(f"token {token_id!r} does not exist")
        return _token(row)

    def user_for_token(self, secret_hash: str) -> User | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(users)
                .join(api_tokens, api_tokens.c.user_id == users.c.id)
                .where(
                    api_tokens.c.secret_hash == secret_hash,
                    api_tokens.c.revoked_ms.is_(None),
                    users.c.disabled.is_(False),
                )
            ).first()
        return _user(row) if row is not None else None

    def list_tokens(self, user_name: str | None = None) -> list[ApiToken]:
        query = select(*_TOKEN_COLUMNS).join(users, users.c.id == api_tokens.c.user_id)
        if user_name is not None:
            query = query.where(users.c.name == user_name)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(api_tokens.c.created_ms, api_tokens.c.token_id))
            return [_token(r) for r in rows]

    def revoke_token(self, token_id: str) -> ApiToken:
        with self.db.write() as conn:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms())
            )
        return self._get_token(token_id)  # NotFound for an unknown id

    # -- grants ----------------------------------------------------------------------------------
    def set_grant(
        self, user_name: str, object_kind: str, object_id: str, role: Role | None
    ) -> None:
        key = (
            (grants.c.user_name == user_name)
            & (grants.c.object_kind == object_kind)
            & (grants.c.object_id == object_id)
        )
        with self.db.write() as conn:
            if role is None:
                conn.execute(delete(grants).where(key))
                return
            stmt = self.db.insert(grants).values(
                user_name=user_name, object_kind=object_kind, object_id=object_id, role=int(role)
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["user_name", "object_kind", "object_id"],
                    set_={"role": int(role)},
                )
            )

    def best_role(self, user_name: str, object_kind: str, object_id: str) -> Role | None:
        with self.db.read() as conn:
            best = conn.execute(
                select(func.max(grants.c.role)).where(
                    grants.c.user_name.in_([user_name, ALL_USERS]),
                    grants.c.object_kind == object_kind,
                    grants.c.object_id == object_id,
                )
            ).scalar()
        return Role(best) if best else None

    def readable_objects(self, user_name: str, object_kind: str) -> set[str]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(grants.c.object_id).where(
                    grants.c.user_name.in_([user_name, ALL_USERS]),
                    grants.c.object_kind == object_kind,
                )
            )
            return {r[0] for r in rows}

    def list_grants(
        self,
        user_name: str | None = None,
        object_kind: str | None = None,
        object_id: str | None = None,
    ) -> list[Grant]:
        query = select(grants)
        if user_name is not None:
            query = query.where(grants.c.user_name == user_name)
        if object_kind is not None:
            query = query.where(grants.c.object_kind == object_kind)
        if object_id is not None:
            query = query.where(grants.c.object_id == object_id)
        order = (grants.c.object_kind, grants.c.object_id, grants.c.user_name)
        with self.db.read() as conn:
            return [
                Grant(r.user_name, r.object_kind, r.object_id, Role(r.role))
                for r in conn.execute(query.order_by(*order))
            ]

    # -- idempotency -----------------------------------------------------------------------------
    def remember_response(self, key: str, scope: str, status: int, body: bytes) -> bool:
        stmt = self.db.insert(idempotency_keys).values(
            key=key, scope=scope, status=status, body=body.decode(), created_ms=now_ms()
        )
        with self.db.write() as conn:
            done = conn.execute(stmt.on_conflict_do_nothing(index_elements=["key", "scope"]))
        return bool(done.rowcount)

    def recall_response(self, key: str, scope: str) -> tuple[int, bytes] | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(idempotency_keys.c.status, idempotency_keys.c.body).where(
                    idempotency_keys.c.key == key, idempotency_keys.c.scope == scope
                )
            ).first()
        return (row.status, row.body.encode()) if row is not None else None

    def forget_responses(self, older_than_ms: int) -> int:
        with self.db.write() as conn:
            done = conn.execute(
                delete(idempotency_keys).where(idempotency_keys.c.created_ms < older_than_ms)
            )
        return int(done.rowcount)
