"""run summaries: params, latest metrics and tags of a run as one row, for fast search pages

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import json
import math

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_summaries",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_run_summaries_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_run_summaries"),
    )
    # Backfill existing runs, streaming so a large database is not loaded whole.
    conn = op.get_bind()
    summaries: dict[str, dict[str, dict[str, object]]] = {}

    def entry(run_id: str) -> dict[str, dict[str, object]]:
        return summaries.setdefault(run_id, {"p": {}, "m": {}, "t": {}})

    for run_id, key, value in conn.execute(sa.text("SELECT run_id, key, value FROM params")):
        entry(run_id)["p"][key] = value
    for run_id, key, value, nan in conn.execute(
        sa.text("SELECT run_id, key, value, is_nan FROM latest_metrics")
    ):
        entry(run_id)["m"][key] = math.nan if nan else value
    for run_id, key, value in conn.execute(sa.text("SELECT run_id, key, value FROM tags")):
        entry(run_id)["t"][key] = value
    for run_id in conn.execute(sa.text("SELECT run_id FROM runs")).scalars():
        entry(run_id)
    rows = [{"run_id": k, "data": json.dumps(v)} for k, v in summaries.items()]
    if rows:
        conn.execute(
            sa.text("INSERT INTO run_summaries (run_id, data) VALUES (:run_id, :data)"), rows
        )


def downgrade() -> None:
    op.drop_table("run_summaries")
