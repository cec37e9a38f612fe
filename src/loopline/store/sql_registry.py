"""The SQL implementation of :class:`RegistryStore` (SQLite and PostgreSQL): the only place
with model registry SQL.

Search filters arrive as the typed :class:`Compare` AST and become bound-parameter conditions;
no filter text reaches the database. Registered models have a surrogate key, so a rename is one
``UPDATE`` and child rows never follow a changing name; cascading foreign keys (on in SQLite
via ``PRAGMA foreign_keys``) remove versions, tags and aliases with what owns them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.sql.elements import ColumnElement

from loopline.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopline.registry.entities import (
    AliasMove,
    CheckResult,
    LoggedModel,
    ModelVersion,
    ModelVersionStage,
    ModelVersionStatus,
    PromotionDecision,
    PromotionRequest,
    PromotionState,
    RegisteredModel,
)
from loopline.registry.store import ANY_VERSION, NewModelVersion, Page, RegistryStore
from loopline.store.database import Database, now_ms
from loopline.store.sql import add_blob_refs, record_files, under_prefix
from loopline.store.sql_tracking import _compare  # one operator table for every search
from loopline.store.tables import (
    alias_history,
    blob_refs,
    experiments,
    logged_model_params,
    logged_model_tags,
    logged_models,
    model_artifacts,
    model_version_tags,
    model_versions,
    promotion_decisions,
    promotion_policies,
    promotion_requests,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
)
from loopline.tracking.entities import LifecycleStage
from loopline.tracking.search_filter import Compare, OrderKey
from loopline.tracking.store import ArtifactRow

__all__ = ["SqlRegistryStore"]

_CHUNK = 900  # ids per IN list: under SQLite's default bound-variable limit
_VERSION_RETRIES = 5
LOGGED_MODEL_OWNER = "logged_model"
"""``blob_refs.owner_kind`` of a logged model's files."""
VERSION_BLOB_OWNER = "model_version"
"""``blob_refs.owner_kind`` of the files a model version pinned (owner id ``<model pk>/<n>``)."""

rm, mv = registered_models.c, model_versions.c
_VERSION_COLUMNS = [rm.name, *model_versions.c]

_MODEL_ORDER = {
    "name": rm.name,
    "creation_timestamp": rm.creation_timestamp,
    "last_updated_timestamp": rm.last_updated_timestamp,
}
_VERSION_ATTRIBUTES = {
    "name": rm.name,
    "run_id": mv.run_id,
    "source_path": mv.source,
    "version_number": mv.version,
    "current_stage": mv.current_stage,
    "creation_timestamp": mv.creation_timestamp,
    "last_updated_timestamp": mv.last_updated_timestamp,
}
_LOGGED_ATTRIBUTES = {
    "name": logged_models.c.name,
    "source_run_id": logged_models.c.source_run_id,
    "status": logged_models.c.status,
    "model_type": logged_models.c.model_type,
    "model_id": logged_models.c.model_id,
    "creation_timestamp": logged_models.c.creation_timestamp,
    "last_updated_timestamp": logged_models.c.last_updated_timestamp,
}


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ordering(keys: Sequence[OrderKey], columns: Mapping[str, Any]) -> list[Any]:
    return [
        (columns[k.key].desc() if k.descending else columns[k.key].asc()).nulls_last() for k in keys
    ]


def _version_row(row: Any, tags: dict[str, str], aliases: list[str]) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        version=row.version,
        creation_timestamp=row.creation_timestamp,
        last_updated_timestamp=row.last_updated_timestamp,
        source=row.source,
        current_stage=row.current_stage,
        description=row.description,
        user_id=row.user_id,
        run_id=row.run_id,
        run_link=row.run_link,
        model_id=row.model_id,
        status=row.status,
        status_message=row.status_message,
        tags=tags,
        aliases=aliases,
        files_digest=row.files_digest,
        version_label=row.version_label or "",
        provenance=json.loads(row.provenance) if row.provenance else {},
    )


class SqlRegistryStore(RegistryStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- helpers -----------------------------------------------------------------------------
    def _model_id(self, conn: Connection, name: str, *, lock: bool = False) -> int:
        """The surrogate key of ``name``. With ``lock`` (PostgreSQL; SQLite's BEGIN IMMEDIATE
        already serialises writers) concurrent writers to one model take turns."""
        query = select(rm.id).where(rm.name == name)
        found = conn.execute(query.with_for_update() if lock else query).scalar_one_or_none()
        if found is None:
            raise NotFound(f"registered model {name!r} not found")
        return int(found)

    def _touch(self, conn: Connection, model_pk: int, stamp: int) -> None:
        conn.execute(
            update(registered_models).where(rm.id == model_pk).values(last_updated_timestamp=stamp)
        )

    def _version_exists(self, conn: Connection, name: str, version: int) -> int:
        """The model's key, after checking ``version`` exists (locking its model row)."""
        pk = self._model_id(conn, name, lock=True)
        found = conn.execute(
            select(mv.version).where(mv.registered_model_id == pk, mv.version == version)
        ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"model version {version} of registered model {name!r} not found")
        return pk

    def _upsert(self, conn: Connection, table: Any, keys: dict[str, Any], value: str) -> None:
        stmt = self.db.insert(table).values(**keys, value=value)
        conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_={"value": value}))

    def _versions(self, conn: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
        """Versions from rows selected with ``_VERSION_COLUMNS``, with tags and aliases (one
        query each per chunk of models, however many versions)."""
        pks = sorted({r.registered_model_id for r in rows})
        tags: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
        aliases: dict[tuple[int, int], list[str]] = defaultdict(list)
        t, a = model_version_tags.c, registered_model_aliases.c
        for chunk in _chunks(pks):
            for pk, version, key, value in conn.execute(
                select(t.registered_model_id, t.version, t.key, t.value)
                .where(t.registered_model_id.in_(chunk))
                .order_by(t.key)
            ):
                tags[(pk, version)][key] = value
            for pk, version, alias in conn.execute(
                select(a.registered_model_id, a.version, a.alias)
                .where(a.registered_model_id.in_(chunk))
                .order_by(a.alias)
            ):
                aliases[(pk, version)].append(alias)
        return [
            _version_row(
                r,
                tags.get((r.registered_model_id, r.version), {}),
                aliases.get((r.registered_model_id, r.version), []),
            )
            for r in rows
        ]

    def _models(self, conn: Connection, rows: Sequence[Any]) -> list[RegisteredModel]:
        """Registered models from ``registered_models`` rows, with tags, aliases and the newest
        version of each stage."""
        pks = [r.id for r in rows]
        tags: dict[int, dict[str, str]] = defaultdict(dict)
        aliases: dict[int, dict[str, int]] = defaultdict(dict)
        latest: dict[int, list[ModelVersion]] = defaultdict(list)
        t, a = registered_model_tags.c, registered_model_aliases.c
        for chunk in _chunks(pks):
            for pk, key, value in conn.execute(
                select(t.registered_model_id, t.key, t.value)
                .where(t.registered_model_id.in_(chunk))
                .order_by(t.key)
            ):
                tags[pk][key] = value
            for pk, alias, version in conn.execute(
                select(a.registered_model_id, a.alias, a.version)
                .where(a.registered_model_id.in_(chunk))
                .order_by(a.alias)
            ):
                aliases[pk][alias] = version
            newest = (
                select(mv.registered_model_id, func.max(mv.version).label("version"))
                .where(mv.registered_model_id.in_(chunk))
                .group_by(mv.registered_model_id, mv.current_stage)
                .subquery()
            )
            version_rows = conn.execute(
                select(*_VERSION_COLUMNS)
                .join_from(model_versions, registered_models, rm.id == mv.registered_model_id)
                .join(
                    newest,
                    and_(
                        newest.c.registered_model_id == mv.registered_model_id,
                        newest.c.version == mv.version,
                    ),
                )
                .order_by(mv.version)
            ).all()
            for row, version in zip(version_rows, self._versions(conn, version_rows), strict=True):
                latest[row.registered_model_id].append(version)
        return [
            RegisteredModel(
                name=r.name,
                creation_timestamp=r.creation_timestamp,
                last_updated_timestamp=r.last_updated_timestamp,
                description=r.description,
                tags=tags.get(r.id, {}),
                aliases=aliases.get(r.id, {}),
                latest_versions=latest.get(r.id, []),
            )
            for r in rows
        ]

    def _model(self, conn: Connection, name: str) -> RegisteredModel:
        row = conn.execute(select(registered_models).where(rm.name == name)).first()
        if row is None:
            raise NotFound(f"registered model {name!r} not found")
        return self._models(conn, [row])[0]

    def _version(self, conn: Connection, name: str, version: int) -> ModelVersion:
        row = conn.execute(
            select(*_VERSION_COLUMNS)
            .join_from(model_versions, registered_models, rm.id == mv.registered_model_id)
            .where(rm.name == name, mv.version == version)
        ).first()
        if row is None:
            self._model_id(conn, name)  # NotFound naming the model if that is what is missing
            raise NotFound(f"model version {version} of registered model {name!r} not found")
        return self._versions(conn, [row])[0]

    # -- registered models -------------------------------------------------------------------
    def create_registered_model(
        self, name: str, description: str, tags: Mapping[str, str]
    ) -> RegisteredModel:
        stamp = now_ms()
        try:
            with self.db.write() as conn:
                pk = conn.execute(
                    registered_models.insert()
                    .values(
                        name=name,
                        description=description,
                        creation_timestamp=stamp,
                        last_updated_timestamp=stamp,
                        last_version=0,
                    )
                    .returning(rm.id)
                ).scalar_one()
                if tags:
                    conn.execute(
                        registered_model_tags.insert(),
                        [
                            {"registered_model_id": pk, "key": k, "value": v}
                            for k, v in tags.items()
                        ],
                    )
                return self._model(conn, name)
        except SqlIntegrityError:
            raise AlreadyExists(f"registered model {name!r} already exists") from None

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            return self._model(conn, name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        try:
            with self.db.write() as conn:
                result = conn.execute(
                    update(registered_models)
                    .where(rm.name == name)
                    .values(name=new_name, last_updated_timestamp=now_ms())
                )
                if result.rowcount == 0:
                    raise NotFound(f"registered model {name!r} not found")
                return self._model(conn, new_name)
        except SqlIntegrityError:
            raise AlreadyExists(
                f"cannot rename {name!r}: registered model {new_name!r} already exists"
            ) from None

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        with self.db.write() as conn:
            result = conn.execute(
                update(registered_models)
                .where(rm.name == name)
                .values(description=description, last_updated_timestamp=now_ms())
            )
            if result.rowcount == 0:
                raise NotFound(f"registered model {name!r} not found")
            return self._model(conn, name)

    def delete_registered_model(self, name: str) -> None:
        with self.db.write() as conn:
            pk = self._model_id(conn, name, lock=True)
            conn.execute(delete(registered_models).where(rm.id == pk))
            conn.execute(
                delete(blob_refs).where(
                    blob_refs.c.owner_kind == VERSION_BLOB_OWNER,
                    blob_refs.c.owner_id.like(f"{pk}/%"),
                )
            )

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        with self.db.write() as conn:
            pk = self._model_id(conn, name, lock=True)
            self._upsert(
                conn, registered_model_tags, {"registered_model_id": pk, "key": key}, value
            )
            self._touch(conn, pk, now_ms())

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        t = registered_model_tags.c
        with self.db.write() as conn:
            pk = self._model_id(conn, name, lock=True)
            conn.execute(
                delete(registered_model_tags).where(t.registered_model_id == pk, t.key == key)
            )
            self._touch(conn, pk, now_ms())

    @staticmethod
    def _model_condition(c: Compare) -> ColumnElement[bool]:
        if c.kind == "attribute":
            return _compare(rm.name, c.op, c.value)
        t = registered_model_tags.c
        return rm.id.in_(
            select(t.registered_model_id).where(t.key == c.key, _compare(t.value, c.op, c.value))
        )

    def search_registered_models(
        self,
        filters: Sequence[Compare],
        order_by: Sequence[OrderKey],
        max_results: int,
        offset: int = 0,
    ) -> Page[RegisteredModel]:
        query = select(registered_models).where(*[self._model_condition(c) for c in filters])
        query = query.order_by(*_ordering(order_by, _MODEL_ORDER), rm.name.asc())
        with self.db.read() as conn:
            rows = conn.execute(query.limit(max_results + 1).offset(offset)).all()
            more = len(rows) > max_results
            found = self._models(conn, rows[:max_results])
        return Page(found, offset + max_results if more else None)

    # -- model versions ----------------------------------------------------------------------
    def create_model_version(self, name: str, new: NewModelVersion) -> ModelVersion:
        # Bumping the counter takes the model row's write lock, so concurrent creators are
        # numbered one after another; the (model, version) primary key backs that up, and a
        # collision (a counter edited by hand, say) is retried rather than surfaced.
        for _attempt in range(_VERSION_RETRIES):
            stamp = now_ms()
            try:
                with self.db.write() as conn:
                    bumped = conn.execute(
                        update(registered_models)
                        .where(rm.name == name)
                        .values(last_version=rm.last_version + 1, last_updated_timestamp=stamp)
                        .returning(rm.id, rm.last_version)
                    ).first()
                    if bumped is None:
                        raise NotFound(f"registered model {name!r} not found")
                    pk, version = bumped
                    conn.execute(
                        model_versions.insert().values(
                            registered_model_id=pk,
                            version=version,
                            source=new.source,
                            run_id=new.run_id,
                            run_link=new.run_link,
                            model_id=new.model_id,
                            description=new.description,
                            user_id=new.user_id,
                            status=ModelVersionStatus.READY,
                            status_message="",
                            current_stage=ModelVersionStage.NONE,
                            creation_timestamp=stamp,
                            last_updated_timestamp=stamp,
                            files_digest=new.files_digest,
                            version_label=new.version_label,
                            provenance=json.dumps(new.provenance) if new.provenance else None,
                        )
                    )
                    if new.files_digest:
                        owner = f"{pk}/{version}"
                        refs = (VERSION_BLOB_OWNER, owner)
                        add_blob_refs(self.db, conn, *refs, [new.files_digest], "manifest", stamp)
                        add_blob_refs(self.db, conn, *refs, new.file_digests, stamp=stamp)
                    if new.tags:
                        conn.execute(
                            model_version_tags.insert(),
                            [
                                {
                                    "registered_model_id": pk,
                                    "version": version,
                                    "key": k,
                                    "value": v,
                                }
                                for k, v in new.tags.items()
                            ],
                        )
                    return self._version(conn, name, version)
            except SqlIntegrityError:
                continue
        raise Conflict(
            f"could not number a new version of registered model {name!r} after "
            f"{_VERSION_RETRIES} attempts; retry"
        )

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        with self.db.read() as conn:
            return self._version(conn, name, version)

    def update_model_version(self, name: str, version: int, description: str) -> ModelVersion:
        with self.db.write() as conn:
            pk = self._version_exists(conn, name, version)
            conn.execute(
                update(model_versions)
                .where(mv.registered_model_id == pk, mv.version == version)
                .values(description=description, last_updated_timestamp=now_ms())
            )
            return self._version(conn, name, version)

    def transition_model_version_stage(
        self, name: str, version: int, stage: str, archive_existing_versions: bool
    ) -> ModelVersion:
        stamp = now_ms()
        with self.db.write() as conn:
            pk = self._version_exists(conn, name, version)
            if archive_existing_versions:
                conn.execute(
                    update(model_versions)
                    .where(
                        mv.registered_model_id == pk,
                        mv.current_stage == stage,
                        mv.version != version,
                    )
                    .values(current_stage=ModelVersionStage.ARCHIVED, last_updated_timestamp=stamp)
                )
            conn.execute(
                update(model_versions)
                .where(mv.registered_model_id == pk, mv.version == version)
                .values(current_stage=stage, last_updated_timestamp=stamp)
            )
            self._touch(conn, pk, stamp)
            return self._version(conn, name, version)

    def delete_model_version(self, name: str, version: int) -> None:
        with self.db.write() as conn:
            pk = self._version_exists(conn, name, version)
            conn.execute(
                delete(model_versions).where(mv.registered_model_id == pk, mv.version == version)
            )
            conn.execute(
                delete(blob_refs).where(
                    blob_refs.c.owner_kind == VERSION_BLOB_OWNER,
                    blob_refs.c.owner_id == f"{pk}/{version}",
                )
            )
            self._touch(conn, pk, now_ms())

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        with self.db.write() as conn:
            pk = self._version_exists(conn, name, version)
            keys = {"registered_model_id": pk, "version": version, "key": key}
            self._upsert(conn, model_version_tags, keys, value)

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        t = model_version_tags.c
        with self.db.write() as conn:
            pk = self._version_exists(conn, name, version)
            conn.execute(
                delete(model_version_tags).where(
                    t.registered_model_id == pk, t.version == version, t.key == key
                )
            )

    @staticmethod
    def _version_condition(c: Compare) -> ColumnElement[bool]:
        if c.kind == "attribute":
            return _compare(_VERSION_ATTRIBUTES[c.key], c.op, c.value)
        t = model_version_tags.c
        return exists().where(
            t.registered_model_id == mv.registered_model_id,
            t.version == mv.version,
            t.key == c.key,
            _compare(t.value, c.op, c.value),
        )

    def search_model_versions(
        self,
        filters: Sequence[Compare],
        order_by: Sequence[OrderKey],
        max_results: int,
        offset: int = 0,
    ) -> Page[ModelVersion]:
        query = (
            select(*_VERSION_COLUMNS)
            .join_from(model_versions, registered_models, rm.id == mv.registered_model_id)
            .where(*[self._version_condition(c) for c in filters])
            .order_by(*_ordering(order_by, _VERSION_ATTRIBUTES), rm.name.asc(), mv.version.desc())
        )
        with self.db.read() as conn:
            rows = conn.execute(query.limit(max_results + 1).offset(offset)).all()
            more = len(rows) > max_results
            found = self._versions(conn, rows[:max_results])
        return Page(found, offset + max_results if more else None)

    def get_latest_versions(self, name: str, stages: Sequence[str]) -> list[ModelVersion]:
        with self.db.read() as conn:
            pk = self._model_id(conn, name)
            newest = dict(
                conn.execute(
                    select(mv.current_stage, func.max(mv.version))
                    .where(mv.registered_model_id == pk, mv.current_stage.in_(list(stages)))
                    .group_by(mv.current_stage)
                ).all()
            )
            return [self._version(conn, name, newest[s]) for s in stages if s in newest]

    # -- aliases -----------------------------------------------------------------------------
    def _alias_target(self, conn: Connection, pk: int, alias: str) -> int | None:
        a = registered_model_aliases.c
        return conn.execute(
            select(a.version).where(a.registered_model_id == pk, a.alias == alias)
        ).scalar_one_or_none()

    def _record_move(
        self,
        conn: Connection,
        pk: int,
        alias: str,
        version: int | None,
        previous: int | None,
        actor: str,
        reason: str,
        stamp: int,
    ) -> int:
        return int(
            conn.execute(
                alias_history.insert()
                .values(
                    registered_model_id=pk,
                    alias=alias,
                    version=version,
                    previous_version=previous,
                    actor=actor or "unknown",
                    reason=reason,
                    time_ms=stamp,
                )
                .returning(alias_history.c.id)
            ).scalar_one()
        )

    def _move_alias(
        self,
        conn: Connection,
        pk: int,
        name: str,
        alias: str,
        version: int,
        expected: int | str | None,
        actor: str,
        reason: str,
        stamp: int,
    ) -> AliasMove:
        """Point the alias at ``version`` and append the move to its history; the caller holds
        the model row's lock. Conflict (nothing changed) if ``expected`` no longer holds."""
        previous = self._alias_target(conn, pk, alias)
        if expected != ANY_VERSION and previous != expected:
            raise Conflict(
                f"alias {alias!r} of {name!r} points at "
                f"{'nothing' if previous is None else f'version {previous}'}, not "
                f"{'nothing' if expected is None else f'version {expected}'}: it moved "
                "since this promotion was prepared; look again and retry"
            )
        stmt = self.db.insert(registered_model_aliases).values(
            registered_model_id=pk, alias=alias, version=version
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["registered_model_id", "alias"], set_={"version": version}
            )
        )
        seq = self._record_move(conn, pk, alias, version, previous, actor, reason, stamp)
        self._touch(conn, pk, stamp)
        return AliasMove(name, alias, version, previous, actor or "unknown", reason, stamp, seq)

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str = "",
        reason: str = "",
        expected: int | str | None = ANY_VERSION,
    ) -> AliasMove:
        stamp = now_ms()
        with self.db.write() as conn:
            # Locks the model row (PostgreSQL; SQLite's writer lock already serialises), so
            # the check and the move are one step for concurrent promoters.
            pk = self._version_exists(conn, name, version)
            return self._move_alias(conn, pk, name, alias, version, expected, actor, reason, stamp)

    def delete_alias(self, name: str, alias: str, *, actor: str = "", reason: str = "") -> None:
        a = registered_model_aliases.c
        stamp = now_ms()
        with self.db.write() as conn:
            pk = self._model_id(conn, name, lock=True)
            previous = self._alias_target(conn, pk, alias)
            if previous is None:
                return
            conn.execute(
                delete(registered_model_aliases).where(
                    a.registered_model_id == pk, a.alias == alias
                )
            )
            self._record_move(conn, pk, alias, None, previous, actor, reason, stamp)
            self._touch(conn, pk, stamp)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        h = alias_history.c
        with self.db.read() as conn:
            pk = self._model_id(conn, name)
            query = select(alias_history).where(h.registered_model_id == pk)
            if alias is not None:
                query = query.where(h.alias == alias)
            rows = conn.execute(query.order_by(h.id)).all()
        return [
            AliasMove(
                name, r.alias, r.version, r.previous_version, r.actor, r.reason, r.time_ms, r.id
            )
            for r in rows
        ]

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        a = registered_model_aliases.c
        with self.db.read() as conn:
            pk = self._model_id(conn, name)
            version = conn.execute(
                select(a.version).where(a.registered_model_id == pk, a.alias == alias)
            ).scalar_one_or_none()
            if version is None:
                raise NotFound(f"registered model {name!r} has no alias {alias!r}")
            return self._version(conn, name, version)

    # -- promotion policies and requests -----------------------------------------------------
    def set_promotion_policy(self, name: str, alias: str, policy: str, actor: str) -> None:
        stamp = now_ms()
        with self.db.write() as conn:
            pk = self._model_id(conn, name, lock=True)
            stmt = self.db.insert(promotion_policies).values(
                registered_model_id=pk,
                alias=alias,
                policy=policy,
                updated_by=actor,
                updated_ms=stamp,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["registered_model_id", "alias"],
                    set_={"policy": policy, "updated_by": actor, "updated_ms": stamp},
                )
            )

    def delete_promotion_policy(self, name: str, alias: str) -> None:
        p = promotion_policies.c
        with self.db.write() as conn:
            pk = self._model_id(conn, name, lock=True)
            conn.execute(
                delete(promotion_policies).where(p.registered_model_id == pk, p.alias == alias)
            )

    def promotion_policies(self, name: str) -> dict[str, str]:
        p = promotion_policies.c
        with self.db.read() as conn:
            pk = self._model_id(conn, name)
            rows = conn.execute(
                select(p.alias, p.policy).where(p.registered_model_id == pk).order_by(p.alias)
            ).all()
        return {r.alias: r.policy for r in rows}

    def _requests(self, conn: Connection, rows: Sequence[Any]) -> list[PromotionRequest]:
        d = promotion_decisions.c
        decisions: dict[int, list[PromotionDecision]] = defaultdict(list)
        ids = [r.id for r in rows]
        for chunk in _chunks(ids):
            for row in conn.execute(
                select(promotion_decisions)
                .where(d.request_id.in_(chunk))
                .order_by(d.time_ms, d.actor)
            ):
                decisions[row.request_id].append(
                    PromotionDecision(row.actor, bool(row.approved), row.comment, row.time_ms)
                )
        return [
            PromotionRequest(
                request_id=r.id,
                name=r.name,
                version=r.version,
                alias=r.alias,
                state=r.state,
                requested_by=r.requested_by,
                reason=r.reason,
                expected_version=r.expected_version,
                required_approvals=r.required_approvals,
                approver_role=r.approver_role,
                created_ms=r.created_ms,
                updated_ms=r.updated_ms,
                checks=[CheckResult(**c) for c in json.loads(r.checks)],
                decisions=decisions.get(r.id, []),
            )
            for r in rows
        ]

    def _request_query(self) -> Any:
        pr = promotion_requests.c
        return select(rm.name, *promotion_requests.c).join_from(
            promotion_requests, registered_models, rm.id == pr.registered_model_id
        )

    def _request(self, conn: Connection, request_id: int) -> PromotionRequest:
        row = conn.execute(
            self._request_query().where(promotion_requests.c.id == request_id)
        ).first()
        if row is None:
            raise NotFound(f"promotion request {request_id} not found")
        return self._requests(conn, [row])[0]

    def create_promotion_request(
        self,
        name: str,
        version: int,
        alias: str,
        *,
        requested_by: str,
        reason: str,
        required_approvals: int,
        approver_role: str,
        checks: Sequence[CheckResult],
    ) -> PromotionRequest:
        stamp = now_ms()
        with self.db.write() as conn:
            pk = self._version_exists(conn, name, version)
            request_id = conn.execute(
                promotion_requests.insert()
                .values(
                    registered_model_id=pk,
                    version=version,
                    alias=alias,
                    state=PromotionState.PENDING,
                    requested_by=requested_by or "unknown",
                    reason=reason,
                    expected_version=self._alias_target(conn, pk, alias),
                    required_approvals=required_approvals,
                    approver_role=approver_role,
                    checks=json.dumps([c.__dict__ for c in checks]),
                    created_ms=stamp,
                    updated_ms=stamp,
                )
                .returning(promotion_requests.c.id)
            ).scalar_one()
            return self._request(conn, int(request_id))

    def get_promotion_request(self, request_id: int) -> PromotionRequest:
        with self.db.read() as conn:
            return self._request(conn, request_id)

    def list_promotion_requests(
        self,
        name: str | None = None,
        *,
        version: int | None = None,
        state: str | None = None,
    ) -> list[PromotionRequest]:
        pr = promotion_requests.c
        query = self._request_query()
        with self.db.read() as conn:
            if name is not None:
                query = query.where(pr.registered_model_id == self._model_id(conn, name))
            if version is not None:
                query = query.where(pr.version == version)
            if state is not None:
                query = query.where(pr.state == state)
            rows = conn.execute(query.order_by(pr.id)).all()
            return self._requests(conn, rows)

    def decide_promotion(
        self,
        request_id: int,
        *,
        actor: str,
        approved: bool,
        comment: str,
        move_reason: str,
    ) -> tuple[PromotionRequest, AliasMove | None]:
        pr = promotion_requests.c
        stamp = now_ms()
        with self.db.write() as conn:
            found = conn.execute(
                select(pr.registered_model_id).where(pr.id == request_id)
            ).scalar_one_or_none()
            if found is None:
                raise NotFound(f"promotion request {request_id} not found")
            # The model row's lock orders deciders and promoters of this model alike.
            name = conn.execute(select(rm.name).where(rm.id == found)).scalar_one()
            pk = self._model_id(conn, name, lock=True)
            request = self._request(conn, request_id)
            if request.state != PromotionState.PENDING:
                raise Conflict(
                    f"promotion request {request_id} is {request.state}, no longer pending"
                )
            if any(x.actor == actor for x in request.decisions):
                raise Conflict(f"{actor} already decided on promotion request {request_id}")
            conn.execute(
                promotion_decisions.insert().values(
                    request_id=request_id,
                    actor=actor,
                    approved=approved,
                    comment=comment,
                    time_ms=stamp,
                )
            )
            state, move = PromotionState.PENDING, None
            approvals = request.approvals + (1 if approved else 0)
            if not approved:
                state = PromotionState.REJECTED
            elif approvals >= request.required_approvals:
                current = self._alias_target(conn, pk, request.alias)
                if current != request.expected_version:
                    state = PromotionState.STALE
                else:
                    move = self._move_alias(
                        conn,
                        pk,
                        name,
                        request.alias,
                        request.version,
                        request.expected_version,
                        actor,
                        move_reason,
                        stamp,
                    )
                    state = PromotionState.APPLIED
            conn.execute(
                update(promotion_requests)
                .where(pr.id == request_id)
                .values(state=state, updated_ms=stamp)
            )
            return self._request(conn, request_id), move

    # -- logged models -----------------------------------------------------------------------
    def create_logged_model(self, model: LoggedModel) -> None:
        try:
            experiment_pk = int(model.experiment_id)
        except ValueError:
            raise NotFound(f"experiment {model.experiment_id!r} not found") from None
        with self.db.write() as conn:
            stage = conn.execute(
                select(experiments.c.lifecycle_stage).where(
                    experiments.c.experiment_id == experiment_pk
                )
            ).scalar_one_or_none()
            if stage is None:
                raise NotFound(f"experiment {model.experiment_id!r} not found")
            if stage != LifecycleStage.ACTIVE:
                raise InvalidInput(
                    f"experiment {model.experiment_id!r} is deleted; restore it before logging "
                    "models to it"
                )
            conn.execute(
                logged_models.insert().values(
                    model_id=model.model_id,
                    experiment_id=experiment_pk,
                    name=model.name,
                    source_run_id=model.source_run_id,
                    model_type=model.model_type,
                    status=model.status,
                    status_message=model.status_message,
                    artifact_location=model.artifact_location,
                    lifecycle_stage=model.lifecycle_stage,
                    creation_timestamp=model.creation_timestamp,
                    last_updated_timestamp=model.last_updated_timestamp,
                )
            )
            for table, items in (
                (logged_model_tags, model.tags),
                (logged_model_params, model.params),
            ):
                if items:
                    conn.execute(
                        table.insert(),
                        [
                            {"model_id": model.model_id, "key": k, "value": v}
                            for k, v in items.items()
                        ],
                    )

    def _logged(self, conn: Connection, rows: Sequence[Any]) -> list[LoggedModel]:
        ids = [r.model_id for r in rows]
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        params: dict[str, dict[str, str]] = defaultdict(dict)
        for chunk in _chunks(ids):
            for table, into in ((logged_model_tags, tags), (logged_model_params, params)):
                for model_id, key, value in conn.execute(
                    select(table.c.model_id, table.c.key, table.c.value)
                    .where(table.c.model_id.in_(chunk))
                    .order_by(table.c.key)
                ):
                    into[model_id][key] = value
        return [
            LoggedModel(
                model_id=r.model_id,
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_location=r.artifact_location,
                creation_timestamp=r.creation_timestamp,
                last_updated_timestamp=r.last_updated_timestamp,
                status=r.status,
                status_message=r.status_message,
                source_run_id=r.source_run_id,
                model_type=r.model_type,
                lifecycle_stage=r.lifecycle_stage,
                tags=tags.get(r.model_id, {}),
                params=params.get(r.model_id, {}),
            )
            for r in rows
        ]

    def _get_logged(self, conn: Connection, model_id: str) -> LoggedModel:
        row = conn.execute(
            select(logged_models).where(logged_models.c.model_id == model_id)
        ).first()
        if row is None:
            raise NotFound(f"logged model {model_id!r} not found")
        return self._logged(conn, [row])[0]

    def _check_writable(self, conn: Connection, model_id: str) -> None:
        stage = conn.execute(
            select(logged_models.c.lifecycle_stage)
            .where(logged_models.c.model_id == model_id)
            .with_for_update()
        ).scalar_one_or_none()
        if stage is None:
            raise NotFound(f"logged model {model_id!r} not found")
        if stage != LifecycleStage.ACTIVE:
            raise InvalidInput(f"logged model {model_id!r} is deleted; it cannot be changed")

    def get_logged_model(self, model_id: str) -> LoggedModel:
        with self.db.read() as conn:
            return self._get_logged(conn, model_id)

    def update_logged_model(
        self,
        model_id: str,
        *,
        status: str | None = None,
        status_message: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> LoggedModel:
        values: dict[str, Any] = {"last_updated_timestamp": now_ms()}
        for column, value in (
            ("status", status),
            ("status_message", status_message),
            ("lifecycle_stage", lifecycle_stage),
        ):
            if value is not None:
                values[column] = value
        with self.db.write() as conn:
            result = conn.execute(
                update(logged_models).where(logged_models.c.model_id == model_id).values(**values)
            )
            if result.rowcount == 0:
                raise NotFound(f"logged model {model_id!r} not found")
            return self._get_logged(conn, model_id)

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        with self.db.write() as conn:
            self._check_writable(conn, model_id)
            for key, value in tags.items():
                self._upsert(conn, logged_model_tags, {"model_id": model_id, "key": key}, value)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        t = logged_model_tags.c
        with self.db.write() as conn:
            self._check_writable(conn, model_id)
            result = conn.execute(
                delete(logged_model_tags).where(t.model_id == model_id, t.key == key)
            )
            if result.rowcount == 0:
                raise NotFound(f"logged model {model_id!r} has no tag {key!r}")

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        p = logged_model_params.c
        with self.db.write() as conn:
            self._check_writable(conn, model_id)
            stored: dict[str, str] = {}
            for chunk in _chunks(list(params)):
                stored.update(
                    conn.execute(
                        select(p.key, p.value).where(p.model_id == model_id, p.key.in_(chunk))
                    ).all()
                )
            for key, old in stored.items():
                if old != params[key]:
                    raise Conflict(
                        f"param {key!r} of logged model {model_id} is already {old!r}; params "
                        f"cannot change (tried {params[key]!r})"
                    )
            rows = [
                {"model_id": model_id, "key": k, "value": v}
                for k, v in params.items()
                if k not in stored
            ]
            if rows:
                conn.execute(logged_model_params.insert(), rows)

    @staticmethod
    def _logged_condition(c: Compare) -> ColumnElement[bool]:
        if c.kind == "attribute":
            return _compare(_LOGGED_ATTRIBUTES[c.key], c.op, c.value)
        table = logged_model_tags if c.kind == "tag" else logged_model_params
        return logged_models.c.model_id.in_(
            select(table.c.model_id).where(
                table.c.key == c.key, _compare(table.c.value, c.op, c.value)
            )
        )

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filters: Sequence[Compare],
        order_by: Sequence[OrderKey],
        include_deleted: bool,
        max_results: int,
        offset: int = 0,
    ) -> Page[LoggedModel]:
        pks = [int(e) for e in experiment_ids if str(e).isdigit()]
        lm = logged_models.c
        query = select(logged_models).where(lm.experiment_id.in_(pks))
        if not include_deleted:
            query = query.where(lm.lifecycle_stage == LifecycleStage.ACTIVE)
        query = query.where(*[self._logged_condition(c) for c in filters])
        query = query.order_by(
            *_ordering(order_by, _LOGGED_ATTRIBUTES), lm.creation_timestamp.desc(), lm.model_id
        )
        with self.db.read() as conn:
            rows = conn.execute(query.limit(max_results + 1).offset(offset)).all()
            more = len(rows) > max_results
            found = self._logged(conn, rows[:max_results])
        return Page(found, offset + max_results if more else None)

    # -- logged-model files ------------------------------------------------------------------
    def add_model_artifacts(self, model_id: str, artifacts: Sequence[ArtifactRow]) -> None:
        with self.db.write() as conn:
            self._check_writable(conn, model_id)
            record_files(
                self.db,
                conn,
                model_artifacts,
                ("model_id", model_id),
                LOGGED_MODEL_OWNER,
                list(artifacts),
            )

    def list_model_artifacts(self, model_id: str, prefix: str = "") -> list[ArtifactRow]:
        ma = model_artifacts.c
        query = select(ma.path, ma.digest, ma.size).where(ma.model_id == model_id)
        if prefix:
            query = query.where(under_prefix(ma.path, prefix))
        with self.db.read() as conn:
            found = conn.execute(
                select(logged_models.c.model_id).where(logged_models.c.model_id == model_id)
            ).scalar_one_or_none()
            if found is None:
                raise NotFound(f"logged model {model_id!r} not found")
            rows = conn.execute(query.order_by(ma.path)).all()
        return [ArtifactRow(p, d, s) for p, d, s in rows]
