"""foundation: workspace facts, events, lineage, blob references

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "workspace_meta",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_workspace_meta"),
    )
    op.create_table(
        "events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("object_kind", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(256), nullable=False),
        sa.Column("details", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index(
        "ix_events_object_kind_object_id_id", "events", ["object_kind", "object_id", "id"]
    )
    op.create_index("ix_events_action_id", "events", ["action", "id"])
    op.create_index("ix_events_time_ms", "events", ["time_ms"])
    op.create_table(
        "lineage",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("source_kind", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(256), nullable=False),
        sa.Column("target_kind", sa.String(64), nullable=False),
        sa.Column("target_id", sa.String(256), nullable=False),
        sa.Column("relation", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lineage"),
        sa.UniqueConstraint(
            "source_kind",
            "source_id",
            "target_kind",
            "target_id",
            "relation",
            name="uq_lineage_source_kind_source_id_target_kind_target_id_relation",
        ),
    )
    op.create_index("ix_lineage_target_kind_target_id", "lineage", ["target_kind", "target_id"])
    op.create_table(
        "blob_refs",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("owner_kind", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), server_default="file", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest", "owner_kind", "owner_id", name="pk_blob_refs"),
    )
    op.create_index("ix_blob_refs_owner_kind_owner_id", "blob_refs", ["owner_kind", "owner_id"])


def downgrade() -> None:
    op.drop_table("blob_refs")
    op.drop_table("lineage")
    op.drop_table("events")
    op.drop_table("workspace_meta")
