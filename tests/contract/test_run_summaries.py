"""The per-run summary rows that search pages read always equal the params, latest metrics and
tags tables, on both backends, and migration 0004 backfills them for existing runs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from loopline.config import Settings
from loopline.store.database import Database
from loopline.store.migrate import MIGRATIONS_DIR
from loopline.store.sql_tracking import SqlTrackingStore
from loopline.tracking.validation import make_metric
from loopline.workspace import Workspace


@pytest.fixture
def workspace(store_uri: str, tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(Settings.for_home(tmp_path / "ws", store_uri=store_uri))
    yield ws
    ws.close()


def _both(store: SqlTrackingStore, run_id: str) -> tuple[object, object]:
    with store.db.read() as conn:
        return store._run_data(conn, [run_id])[run_id], store._run_data_from_tables(conn, [run_id])[
            run_id
        ]


def _same(a: object, b: object) -> bool:
    return repr(a) == repr(b)  # NaN != NaN, but reprs agree


def test_every_write_path_keeps_the_summary_equal_to_the_tables(workspace: Workspace):
    """create_run, log_batch (params, tags, metrics incl. NaN, an older step), update_run and
    delete_tag each leave summary == tables."""
    tracking = workspace.tracking
    store = tracking.store
    assert isinstance(store, SqlTrackingStore)
    run = tracking.create_run(tags={"team": "vision"})
    rid = run.run_id
    assert _same(*_both(store, rid))
    tracking.log_batch(
        rid,
        [make_metric("acc", 0.5, 2), make_metric("acc", 0.9, 1), make_metric("loss", math.nan)],
        [("lr", "0.01")],
        [("stage", "dev")],
    )
    summary, tables = _both(store, rid)
    assert _same(summary, tables)
    assert summary[1]["acc"] == 0.5  # the highest step wins, not the last logged
    assert math.isnan(summary[1]["loss"])
    tracking.update_run(rid, run_name="renamed")
    assert _same(*_both(store, rid))
    tracking.delete_tag(rid, "stage")
    summary, tables = _both(store, rid)
    assert _same(summary, tables) and "stage" not in summary[2]
    assert tracking.get_run(rid).tags["mlflow.runName"] == "renamed"


def test_a_rejected_batch_leaves_the_summary_unchanged(workspace: Workspace):
    tracking = workspace.tracking
    rid = tracking.create_run().run_id
    tracking.log_batch(rid, params=[("lr", "0.1")])
    before = _both(tracking.store, rid)[0]  # type: ignore[arg-type]
    with pytest.raises(Exception, match="lr"):
        tracking.log_batch(rid, [make_metric("m", 1.0)], [("lr", "0.2")])
    assert _same(_both(tracking.store, rid)[0], before)  # type: ignore[arg-type]


def test_migration_0004_backfills_summaries_of_existing_runs(store_uri: str):
    """A database with runs written before summaries existed gets one per run on upgrade."""
    db = Database(store_uri, migrate_on_open=False)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with db.write() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0003")
        with db.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status,"
                    " start_time, lifecycle_stage, artifact_uri)"
                    " VALUES ('a' || :x, 0, 'old', 'u', 'FINISHED', 1, 'active', 'x')"
                ),
                [{"x": "1" * 31}, {"x": "2" * 31}],
            )
            conn.execute(
                text("INSERT INTO params (run_id, key, value) VALUES (:r, 'lr', '0.1')"),
                {"r": "a" + "1" * 31},
            )
            conn.execute(
                text(
                    "INSERT INTO latest_metrics (run_id, key, value, timestamp, step, is_nan)"
                    " VALUES (:r, 'acc', 0.75, 1, 0, FALSE)"
                ),
                {"r": "a" + "1" * 31},
            )
        db.upgrade()
        store = SqlTrackingStore(db)
        with db.read() as conn:
            data = store._run_data(conn, ["a" + "1" * 31, "a" + "2" * 31])
            count = conn.execute(text("SELECT count(*) FROM run_summaries")).scalar()
        assert count == 2
        assert data["a" + "1" * 31] == ({"lr": "0.1"}, {"acc": 0.75}, {})
        assert data["a" + "2" * 31] == ({}, {}, {})
    finally:
        db.close()
