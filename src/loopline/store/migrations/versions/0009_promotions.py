"""promotion policies and approvals; model versions carry a semantic label and a provenance record

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(
            sa.Column("version_label", sa.String(32), server_default="", nullable=False)
        )
        batch.add_column(sa.Column("provenance", sa.Text(), nullable=True))
    op.create_table(
        "promotion_policies",
        sa.Column("registered_model_id", _BIG_ID, nullable=False),
        sa.Column("alias", sa.String(256), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registered_model_id"],
            ["registered_models.id"],
            name=op.f("fk_promotion_policies_registered_model_id_registered_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("registered_model_id", "alias", name=op.f("pk_promotion_policies")),
    )
    op.create_table(
        "promotion_requests",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("registered_model_id", _BIG_ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("expected_version", sa.Integer(), nullable=True),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("approver_role", sa.String(16), nullable=False),
        sa.Column("checks", sa.Text(), server_default="[]", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registered_model_id", "version"],
            ["model_versions.registered_model_id", "model_versions.version"],
            name=op.f("fk_promotion_requests_registered_model_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_requests")),
    )
    op.create_index(
        op.f("ix_promotion_requests_registered_model_id_state"),
        "promotion_requests",
        ["registered_model_id", "state"],
    )
    op.create_table(
        "promotion_decisions",
        sa.Column("request_id", _BIG_ID, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["promotion_requests.id"],
            name=op.f("fk_promotion_decisions_request_id_promotion_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "actor", name=op.f("pk_promotion_decisions")),
    )


def downgrade() -> None:
    op.drop_table("promotion_decisions")
    op.drop_table("promotion_requests")
    op.drop_table("promotion_policies")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("provenance")
        batch.drop_column("version_label")
