"""The SQL implementation of :class:`DataStore` (SQLite and PostgreSQL): the only place with
dataset SQL."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from loopline.data.entities import Dataset, DatasetVersion
from loopline.data.store import DataStore, NewDatasetVersion
from loopline.errors import NotFound
from loopline.store.database import Database, now_ms
from loopline.store.sql import add_blob_refs
from loopline.store.tables import blob_refs, dataset_versions, datasets

__all__ = ["DATASET_BLOB_OWNER", "SqlDataStore"]

DATASET_BLOB_OWNER = "dataset_version"
"""``blob_refs.owner_kind`` of a dataset version's blobs (owner id ``<name>@<version>``)."""

ds, dv = datasets.c, dataset_versions.c
_VERSION_COLUMNS = [ds.name, *dataset_versions.c]


def _version(row: Any) -> DatasetVersion:
    return DatasetVersion(
        name=row.name,
        version=row.version,
        digest=row.digest,
        kind=row.kind,
        file_count=row.file_count,
        total_size=row.total_size,
        created_ms=row.created_ms,
        created_by=row.created_by,
        message=row.message,
        row_count=row.row_count,
        schema=json.loads(row.schema) if row.schema else None,
        profile_digest=row.profile_digest,
        tags=json.loads(row.tags or "{}"),
    )


class SqlDataStore(DataStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    def _dataset_id(self, conn: Connection, name: str, *, lock: bool = False) -> int:
        query = select(ds.id).where(ds.name == name)
        found = conn.execute(query.with_for_update() if lock else query).scalar_one_or_none()
        if found is None:
            raise NotFound(f"dataset {name!r} not found")
        return int(found)

    def _select_versions(self) -> Any:
        return select(*_VERSION_COLUMNS).join_from(
            dataset_versions, datasets, ds.id == dv.dataset_id
        )

    def add_version(self, name: str, new: NewDatasetVersion) -> tuple[DatasetVersion, bool]:
        stamp = now_ms()
        with self.db.write() as conn:
            stmt = self.db.insert(datasets).values(
                name=name, description="", last_version=0, created_ms=stamp, updated_ms=stamp
            )
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
            # The dataset row's lock orders concurrent adders (SQLite's writer lock already does).
            pk = self._dataset_id(conn, name, lock=True)
            latest = conn.execute(
                self._select_versions()
                .where(dv.dataset_id == pk)
                .order_by(dv.version.desc())
                .limit(1)
            ).first()
            if latest is not None and latest.digest == new.digest:
                return _version(latest), False
            number = conn.execute(
                update(datasets)
                .where(ds.id == pk)
                .values(last_version=ds.last_version + 1, updated_ms=stamp)
                .returning(ds.last_version)
            ).scalar_one()
            conn.execute(
                dataset_versions.insert().values(
                    dataset_id=pk,
                    version=number,
                    digest=new.digest,
                    kind=new.kind,
                    file_count=new.file_count,
                    total_size=new.total_size,
                    row_count=new.row_count,
                    schema=json.dumps(new.schema) if new.schema is not None else None,
                    profile_digest=new.profile_digest,
                    tags=json.dumps(new.tags),
                    message=new.message,
                    created_by=new.created_by,
                    created_ms=stamp,
                )
            )
            # The manifest reference keeps every file it lists (GC reads referenced manifests),
            # so a version of 20,000 files costs one reference row, not 20,001.
            owner = (DATASET_BLOB_OWNER, f"{name}@{number}")
            add_blob_refs(self.db, conn, *owner, [new.digest], "manifest", stamp)
            if new.profile_digest:
                add_blob_refs(self.db, conn, *owner, [new.profile_digest], stamp=stamp)
            row = conn.execute(
                self._select_versions().where(dv.dataset_id == pk, dv.version == number)
            ).one()
            return _version(row), True

    def get_version(self, name: str, version: int | None) -> DatasetVersion:
        with self.db.read() as conn:
            pk = self._dataset_id(conn, name)
            query = self._select_versions().where(dv.dataset_id == pk)
            if version is None:
                query = query.order_by(dv.version.desc()).limit(1)
            else:
                query = query.where(dv.version == version)
            row = conn.execute(query).first()
        if row is None:
            if version is None:
                raise NotFound(f"dataset {name!r} has no versions")
            raise NotFound(f"dataset {name!r} has no version {version}")
        return _version(row)

    def versions_with_digest(self, digest: str) -> list[DatasetVersion]:
        with self.db.read() as conn:
            rows = conn.execute(
                self._select_versions().where(dv.digest == digest).order_by(dv.created_ms)
            ).all()
        return [_version(r) for r in rows]

    def _datasets(self, conn: Connection, name: str | None = None) -> list[Dataset]:
        counts = (
            select(dv.dataset_id, func.count().label("n"), func.max(dv.version).label("latest"))
            .group_by(dv.dataset_id)
            .subquery()
        )
        query = (
            select(ds.name, ds.description, ds.created_ms, ds.updated_ms)
            .add_columns(counts.c.n, counts.c.latest)
            .join_from(datasets, counts, counts.c.dataset_id == ds.id, isouter=True)
            .order_by(ds.name)
        )
        if name is not None:
            query = query.where(ds.name == name)
        return [
            Dataset(r.name, r.description, r.created_ms, r.updated_ms, r.latest, r.n or 0)
            for r in conn.execute(query)
        ]

    def list_datasets(self) -> list[Dataset]:
        with self.db.read() as conn:
            return self._datasets(conn)

    def get_dataset(self, name: str) -> Dataset:
        with self.db.read() as conn:
            found = self._datasets(conn, name)
        if not found:
            raise NotFound(f"dataset {name!r} not found")
        return found[0]

    def list_versions(self, name: str) -> list[DatasetVersion]:
        with self.db.read() as conn:
            pk = self._dataset_id(conn, name)
            rows = conn.execute(
                self._select_versions().where(dv.dataset_id == pk).order_by(dv.version.desc())
            ).all()
        return [_version(r) for r in rows]

    def delete_version(self, name: str, version: int) -> None:
        with self.db.write() as conn:
            pk = self._dataset_id(conn, name, lock=True)
            gone = conn.execute(
                delete(dataset_versions).where(dv.dataset_id == pk, dv.version == version)
            ).rowcount
            if not gone:
                raise NotFound(f"dataset {name!r} has no version {version}")
            conn.execute(
                delete(blob_refs).where(
                    blob_refs.c.owner_kind == DATASET_BLOB_OWNER,
                    blob_refs.c.owner_id == f"{name}@{version}",
                )
            )

    def delete_dataset(self, name: str) -> None:
        with self.db.write() as conn:
            pk = self._dataset_id(conn, name, lock=True)
            numbers = conn.execute(select(dv.version).where(dv.dataset_id == pk)).scalars().all()
            owners = [f"{name}@{n}" for n in numbers]
            for start in range(0, len(owners), 500):
                conn.execute(
                    delete(blob_refs).where(
                        blob_refs.c.owner_kind == DATASET_BLOB_OWNER,
                        blob_refs.c.owner_id.in_(owners[start : start + 500]),
                    )
                )
            conn.execute(delete(datasets).where(ds.id == pk))
