"""Table definitions (SQLAlchemy Core). Migrations create them; the SQL store queries them.

Every later domain adds its tables here and through a new migration in ``migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["blob_refs", "events", "lineage", "metadata", "workspace_meta"]

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants 64 bits for a log.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

workspace_meta = Table(
    "workspace_meta",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("time_ms", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(128), nullable=False),
    Column("object_kind", String(64), nullable=False),
    Column("object_id", String(256), nullable=False),
    Column("details", Text, nullable=False, server_default="{}"),
    Index(None, "object_kind", "object_id", "id"),
    Index(None, "action", "id"),
    Index(None, "time_ms"),
)

lineage = Table(
    "lineage",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source_kind", String(64), nullable=False),
    Column("source_id", String(256), nullable=False),
    Column("target_kind", String(64), nullable=False),
    Column("target_id", String(256), nullable=False),
    Column("relation", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("source_kind", "source_id", "target_kind", "target_id", "relation"),
    Index(None, "target_kind", "target_id"),
)

blob_refs = Table(
    "blob_refs",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("owner_kind", String(64), primary_key=True),
    Column("owner_id", String(256), primary_key=True),
    Column("kind", String(16), nullable=False, server_default="file"),
    Column("created_ms", BigInteger, nullable=False),
    Index(None, "owner_kind", "owner_id"),
)
