"""The tracking contract (experiments, runs, batches, search, artifacts, purge), run through the
TrackingService against SQLite and PostgreSQL.

Each PostgreSQL test pays for a fresh database, so one test covers one behaviour with all of its
cases, usually as a table compared in a single assertion whose diff names every case that broke.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from loopline.config import Settings
from loopline.entities import Ref
from loopline.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopline.store import tables as t
from loopline.tracking.entities import LifecycleStage, Run, RunStatus, ViewType
from loopline.tracking.service import TrackingService
from loopline.tracking.validation import make_metric
from loopline.workspace import Workspace
from tests.live_server import ThreadServer


@pytest.fixture
def workspace(store_uri: str, tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(Settings.for_home(tmp_path / "ws", store_uri=store_uri, actor="tester"))
    yield ws
    ws.close()


@pytest.fixture(params=["in-process", "server"])
def tracking(request: pytest.FixtureRequest, workspace: Workspace) -> Iterator[TrackingService]:
    """The service in this process, or the same interface through a live ``loopline server``
    (on the same stores, so tests can still look at rows and blobs directly)."""
    if request.param == "in-process":
        yield workspace.tracking
        return
    with ThreadServer(workspace) as server:
        remote = Workspace(
            Settings.for_home(workspace.settings.home, tracking_uri=server.url, actor="tester")
        )
        yield remote.tracking  # type: ignore[misc]
        remote.close()


def _raised(call: Callable[..., object], *args: object, **kwargs: object) -> str:
    """The name of the exception ``call`` raises, or ``"nothing"``."""
    try:
        call(*args, **kwargs)
    except Exception as exc:
        return type(exc).__name__
    return "nothing"


def _names(runs: list[Run]) -> list[str]:
    return [r.info.run_name for r in runs]


# -- experiments -------------------------------------------------------------------------------

EXPERIMENT_CALLS: dict[str, Callable[[TrackingService, str], object]] = {
    "get": lambda s, i: s.get_experiment(i),
    "rename": lambda s, i: s.rename_experiment(i, "x"),
    "delete": lambda s, i: s.delete_experiment(i),
    "restore": lambda s, i: s.restore_experiment(i),
    "set_tag": lambda s, i: s.set_experiment_tag(i, "k", "v"),
    "create_run": lambda s, i: s.create_run(i),
}


class TestExperiments:
    def test_the_default_experiment_exists_after_migration(self, tracking: TrackingService):
        default = tracking.get_experiment("0")
        assert (default.name, default.lifecycle_stage) == ("Default", LifecycleStage.ACTIVE)
        assert [e.experiment_id for e in tracking.list_experiments()] == ["0"]

    def test_a_created_experiment_is_found_by_id_and_by_name(self, tracking: TrackingService):
        eid = tracking.create_experiment("vision", tags={"team": "cv"})
        found = tracking.get_experiment(eid)
        assert found == tracking.get_experiment_by_name("vision")
        assert (found.name, found.tags, found.lifecycle_stage) == (
            "vision",
            {"team": "cv"},
            "active",
        )
        assert found.artifact_location == f"mlflow-artifacts:/{eid}"
        explicit = tracking.create_experiment("e", artifact_location="s3://bucket/e")
        assert tracking.get_experiment(explicit).artifact_location == "s3://bucket/e"

    def test_a_taken_name_raises_already_exists_even_when_deleted(self, tracking: TrackingService):
        eid = tracking.create_experiment("dup")
        with pytest.raises(AlreadyExists, match="dup"):
            tracking.create_experiment("dup")
        tracking.delete_experiment(eid)
        with pytest.raises(AlreadyExists, match="dup"):
            tracking.create_experiment("dup")

    def test_rename_moves_the_name_unless_it_is_taken(self, tracking: TrackingService):
        eid = tracking.create_experiment("old")
        tracking.create_experiment("theirs")
        tracking.rename_experiment(eid, "new")
        assert tracking.get_experiment_by_name("new").experiment_id == eid
        with pytest.raises(NotFound, match="old"):
            tracking.get_experiment_by_name("old")
        with pytest.raises(AlreadyExists, match="theirs"):
            tracking.rename_experiment(eid, "theirs")
        assert tracking.get_experiment(eid).name == "new"

    def test_delete_and_restore_move_an_experiment_between_list_views(
        self, tracking: TrackingService
    ):
        eid = tracking.create_experiment("e")

        def ids(view: ViewType) -> list[str]:
            return [e.experiment_id for e in tracking.list_experiments(view)]

        tracking.delete_experiment(eid)
        assert tracking.get_experiment(eid).lifecycle_stage == LifecycleStage.DELETED
        assert (ids(ViewType.ACTIVE_ONLY), ids(ViewType.DELETED_ONLY)) == (["0"], [eid])
        assert ids(ViewType.ALL) == ["0", eid]
        tracking.restore_experiment(eid)
        assert (ids(ViewType.ACTIVE_ONLY), ids(ViewType.DELETED_ONLY)) == (["0", eid], [])
        with pytest.raises(InvalidInput, match="Default"):
            tracking.delete_experiment("0")

    def test_search_experiments_filters_orders_and_pages_in_sql(self, tracking: TrackingService):
        for name, team in [("fraud-a", "risk"), ("fraud-b", "growth"), ("churn", "risk")]:
            tracking.create_experiment(name, tags={"team": team})
        tracking.delete_experiment(tracking.get_experiment_by_name("fraud-b").experiment_id)

        def names(**kwargs: Any) -> list[str]:
            return [e.name for e in tracking.search_experiments(**kwargs)[0]]

        got = {
            "like": names(filter_string="name LIKE 'fraud%'"),
            "like all views": names(filter_string="name LIKE 'fraud%'", view="ALL"),
            "tag": names(filter_string="tags.team = 'risk'", order_by=["name DESC"]),
            "deleted only": names(view="DELETED_ONLY"),
            "injection is data": names(filter_string="name = 'x'' OR 1=1 --'"),
            "time": names(filter_string="creation_time > 0 AND name ILIKE 'CHURN'"),
        }
        assert got == {
            "like": ["fraud-a"],
            "like all views": ["fraud-a", "fraud-b"],
            "tag": ["fraud-a", "churn"],
            "deleted only": ["fraud-b"],
            "injection is data": [],
            "time": ["churn"],
        }
        first, token = tracking.search_experiments(max_results=2)
        second, end = tracking.search_experiments(max_results=2, page_token=token)
        assert ([e.name for e in first + second], end) == (["Default", "fraud-a", "churn"], None)
        assert _raised(tracking.search_experiments, filter_string="params.x = '1'") == (
            "InvalidInput"
        )

    def test_set_experiment_tag_adds_then_overwrites(self, tracking: TrackingService):
        eid = tracking.create_experiment("e", tags={"keep": "1"})
        tracking.set_experiment_tag(eid, "stage", "dev")
        tracking.set_experiment_tag(eid, "stage", "prod")
        assert tracking.get_experiment(eid).tags == {"keep": "1", "stage": "prod"}

    def test_unknown_or_non_numeric_ids_and_names_raise_not_found(self, tracking: TrackingService):
        outcomes = {
            (name, bad): _raised(call, tracking, bad)
            for name, call in EXPERIMENT_CALLS.items()
            for bad in ["999", "abc", "", "1.5", "-1"]
        }
        assert outcomes == dict.fromkeys(outcomes, "NotFound")
        with pytest.raises(NotFound, match="nope"):
            tracking.get_experiment_by_name("nope")

    def test_get_or_create_reuses_an_active_experiment_or_creates_one(
        self, tracking: TrackingService
    ):
        created = tracking.get_or_create_experiment("fresh")
        assert tracking.get_or_create_experiment("fresh") == created
        assert tracking.get_experiment_by_name("fresh").experiment_id == created.experiment_id

    def test_a_deleted_experiment_takes_no_runs_and_is_not_silently_reused(
        self, tracking: TrackingService
    ):
        eid = tracking.create_experiment("gone")
        tracking.delete_experiment(eid)
        with pytest.raises(InvalidInput, match="deleted"):
            tracking.create_run(eid)
        with pytest.raises(InvalidInput, match="deleted"):
            tracking.get_or_create_experiment("gone")


# -- runs --------------------------------------------------------------------------------------

RUN_CALLS: dict[str, Callable[[TrackingService, str], object]] = {
    "get": lambda s, i: s.get_run(i),
    "update": lambda s, i: s.update_run(i, status="FINISHED"),
    "end": lambda s, i: s.end_run(i),
    "resume": lambda s, i: s.resume_run(i),
    "delete": lambda s, i: s.delete_run(i),
    "restore": lambda s, i: s.restore_run(i),
    "log_batch": lambda s, i: s.log_batch(i, params=[("p", "1")]),
    "delete_tag": lambda s, i: s.delete_tag(i, "t"),
    "history": lambda s, i: s.get_metric_history(i, "m"),
    "list_artifacts": lambda s, i: s.list_artifacts(i),
    "log_bytes": lambda s, i: s.log_bytes(i, "f.txt", b"x"),
}


class TestRuns:
    def test_create_run_fills_name_tags_status_and_artifact_uri(self, tracking: TrackingService):
        eid = tracking.create_experiment("e")
        run = tracking.create_run(eid, run_name="first", user_id="alice")
        info = run.info
        assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
        assert (info.experiment_id, info.run_name, info.user_id) == (eid, "first", "alice")
        assert (info.status, info.end_time, info.lifecycle_stage) == ("RUNNING", None, "active")
        assert info.artifact_uri == f"mlflow-artifacts:/{eid}/{info.run_id}/artifacts"
        assert run.tags == {"mlflow.runName": "first", "mlflow.user": "alice"}
        assert tracking.get_run(info.run_id) == run

    def test_a_run_name_is_generated_or_taken_from_the_run_name_tag(
        self, tracking: TrackingService
    ):
        generated = tracking.create_run()
        assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", generated.info.run_name)
        assert generated.tags["mlflow.runName"] == generated.info.run_name
        assert generated.tags["mlflow.user"] == generated.info.user_id == "tester"
        assert tracking.create_run(tags={"mlflow.runName": "tagged"}).info.run_name == "tagged"

    def test_a_parent_run_sets_the_parent_tag_and_a_lineage_link(
        self, workspace: Workspace, tracking: TrackingService
    ):
        parent = tracking.create_run().run_id
        child = tracking.create_run(parent_run_id=parent)
        assert child.info.parent_run_id == child.tags["mlflow.parentRunId"] == parent
        edges = workspace.lineage.downstream(("run", parent))
        assert [(e.target, e.relation) for e in edges] == [(Ref("run", child.run_id), "parent_of")]
        with pytest.raises(NotFound):
            tracking.create_run(parent_run_id=uuid.uuid4().hex)

    def test_terminal_statuses_set_end_time_and_others_do_not(self, tracking: TrackingService):
        for status in ["FINISHED", "FAILED", "KILLED"]:
            run = tracking.create_run()
            info = tracking.update_run(run.run_id, status=status)
            assert info.status == status
            assert info.end_time is not None and info.end_time >= run.info.start_time
            assert tracking.get_run(run.run_id).info == info
        ended = tracking.create_run().run_id
        assert tracking.end_run(ended).status == RunStatus.FINISHED
        assert (
            tracking.update_run(tracking.create_run().run_id, status="SCHEDULED").end_time is None
        )

    def test_an_invalid_status_raises_invalid_input_naming_the_allowed_values(
        self, tracking: TrackingService
    ):
        run_id = tracking.create_run().run_id
        with pytest.raises(InvalidInput) as info:
            tracking.update_run(run_id, status="DONE")
        assert all(s.value in str(info.value) for s in RunStatus)
        assert tracking.get_run(run_id).info.status == "RUNNING"

    def test_renaming_a_run_updates_its_name_tag(self, tracking: TrackingService):
        run_id = tracking.create_run(run_name="before").run_id
        tracking.update_run(run_id, run_name="after")
        run = tracking.get_run(run_id)
        assert (run.info.run_name, run.tags["mlflow.runName"]) == ("after", "after")

    def test_resume_sets_a_finished_run_running_but_not_a_deleted_one(
        self, tracking: TrackingService
    ):
        run_id = tracking.create_run().run_id
        tracking.end_run(run_id)
        assert tracking.resume_run(run_id).info.status == RunStatus.RUNNING
        tracking.delete_run(run_id)
        with pytest.raises(InvalidInput, match="deleted"):
            tracking.resume_run(run_id)

    def test_delete_and_restore_change_the_lifecycle_stage(self, tracking: TrackingService):
        run_id = tracking.create_run().run_id
        tracking.delete_run(run_id)
        assert tracking.get_run(run_id).info.lifecycle_stage == LifecycleStage.DELETED
        tracking.restore_run(run_id)
        assert tracking.get_run(run_id).info.lifecycle_stage == LifecycleStage.ACTIVE

    def test_malformed_run_ids_raise_invalid_input(self, tracking: TrackingService):
        outcomes = {
            (name, bad): _raised(call, tracking, bad)
            for name, call in RUN_CALLS.items()
            for bad in ["", "abc", "A" * 32, "g" * 32, "0" * 31, "0" * 33, "'; --" + "0" * 27]
        }
        assert outcomes == dict.fromkeys(outcomes, "InvalidInput")

    def test_an_unknown_run_raises_not_found(self, tracking: TrackingService):
        unknown = uuid.uuid4().hex
        outcomes = {name: _raised(call, tracking, unknown) for name, call in RUN_CALLS.items()}
        assert outcomes == dict.fromkeys(RUN_CALLS, "NotFound")


# -- log_batch ---------------------------------------------------------------------------------


class TestLogBatch:
    def test_params_tags_and_metrics_are_stored(self, tracking: TrackingService):
        run_id = tracking.create_run().run_id
        tracking.log_batch(
            run_id,
            metrics=[make_metric("acc", 0.5, step=1, timestamp=10)],
            params=[("lr", 0.01), ("layers", "3")],
            tags=[("team", "vision")],
        )
        run = tracking.get_run(run_id)
        assert (run.params, run.metrics) == ({"lr": "0.01", "layers": "3"}, {"acc": 0.5})
        assert run.tags["team"] == "vision"
        assert tracking.get_metric_history(run_id, "acc") == [make_metric("acc", 0.5, 1, 10)]

    def test_relogging_an_identical_param_is_a_no_op(self, tracking: TrackingService):
        run_id = tracking.create_run().run_id
        tracking.log_batch(run_id, params=[("lr", "0.1")])
        tracking.log_batch(run_id, params=[("lr", "0.1"), ("new", "x")])
        assert tracking.get_run(run_id).params == {"lr": "0.1", "new": "x"}

    def test_changing_a_param_raises_conflict_and_stores_nothing_from_the_batch(
        self, tracking: TrackingService
    ):
        run_id = tracking.create_run().run_id
        tracking.log_batch(run_id, params=[("lr", "0.1")])
        before = tracking.get_run(run_id)
        with pytest.raises(Conflict, match="lr"):
            tracking.log_batch(
                run_id,
                metrics=[make_metric("acc", 0.9, 0, 1)],
                params=[("fresh", "1"), ("lr", "0.2")],
                tags=[("team", "vision")],
            )
        assert tracking.get_run(run_id) == before
        assert tracking.get_metric_history(run_id, "acc") == []

    def test_one_batch_giving_a_param_two_values_raises_conflict(self, tracking: TrackingService):
        run_id = tracking.create_run().run_id
        before = tracking.get_run(run_id)
        with pytest.raises(Conflict, match="lr"):
            tracking.log_batch(
                run_id,
                metrics=[make_metric("acc", 0.9, 0, 1)],
                params=[("lr", "0.1"), ("lr", "0.2")],
                tags=[("team", "vision")],
            )
        assert tracking.get_run(run_id) == before

    def test_identical_metric_points_are_stored_once(self, tracking: TrackingService):
        """So a batch retried after a lost reply never duplicates; NaN points included."""
        run_id = tracking.create_run().run_id
        batch = [
            make_metric("loss", 1.0, 0, 5),
            make_metric("loss", 1.0, 0, 5),
            make_metric("loss", 2.0, 0, 5),  # same step and time, another value: a new point
            make_metric("nan", math.nan, 0, 5),
        ]
        tracking.log_batch(run_id, metrics=batch)
        tracking.log_batch(run_id, metrics=batch)
        assert [m.value for m in tracking.get_metric_history(run_id, "loss")] == [1.0, 2.0]
        assert len(tracking.get_metric_history(run_id, "nan")) == 1

    def test_metric_history_is_ordered_by_step_then_timestamp(self, tracking: TrackingService):
        run_id = tracking.create_run().run_id
        points = [(2, 10), (0, 30), (1, 20), (0, 10), (1, 5)]
        tracking.log_batch(
            run_id, metrics=[make_metric("m", s * 100 + ts, s, ts) for s, ts in points]
        )
        tracking.log_batch(run_id, metrics=[make_metric("m", 0.0, 1, 7)])
        history = tracking.get_metric_history(run_id, "m")
        assert [(m.step, m.timestamp) for m in history] == sorted([*points, (1, 7)])

    def test_the_latest_metric_is_the_highest_step_then_timestamp(self, tracking: TrackingService):
        run_id = tracking.create_run().run_id

        def log_and_read(*points: tuple[float, int, int]) -> float:
            tracking.log_batch(run_id, metrics=[make_metric("m", *p) for p in points])
            return tracking.get_run(run_id).metrics["m"]

        assert log_and_read((1.0, 5, 100)) == 1.0
        assert log_and_read((2.0, 3, 999)) == 1.0  # a lower step never wins, however late
        assert log_and_read((3.0, 5, 200)) == 3.0  # same step, later timestamp wins
        assert log_and_read((4.0, 5, 150)) == 3.0
        assert log_and_read((7.0, 9, 1), (8.0, 2, 50)) == 7.0  # within one batch alike

    def test_keys_with_slashes_work_everywhere(self, tracking: TrackingService):
        eid = tracking.create_experiment("slashes")
        tracking.set_experiment_tag(eid, "team/area", "risk/fraud")
        run_id = tracking.create_run(eid).run_id
        tracking.log_batch(
            run_id,
            metrics=[make_metric("train/loss", 0.5, 0, 1), make_metric("train/loss", 0.25, 1, 2)],
            params=[("opt/lr", "0.1")],
            tags=[("ci/job", "42")],
        )
        history = [m.value for m in tracking.get_metric_history(run_id, "train/loss")]
        tracking.delete_tag(run_id, "ci/job")
        run = tracking.get_run(run_id)
        assert history == [0.5, 0.25]
        assert (run.params, "ci/job" in run.tags) == ({"opt/lr": "0.1"}, False)
        assert tracking.get_experiment(eid).tags == {"team/area": "risk/fraud"}

    def test_latest_metrics_carry_their_step_and_timestamp(self, tracking: TrackingService):
        run_id = tracking.create_run().run_id
        tracking.log_batch(
            run_id,
            metrics=[
                make_metric("loss", 0.9, 0, 100),
                make_metric("loss", 0.5, 3, 90),
                make_metric("loss", 0.7, 2, 300),
                make_metric("acc", math.inf, 1, 5),
            ],
        )
        got = [(m.key, m.value, m.step, m.timestamp) for m in tracking.get_latest_metrics(run_id)]
        assert got == [("acc", math.inf, 1, 5), ("loss", 0.5, 3, 90)]
        assert tracking.get_latest_metrics(tracking.create_run().run_id) == []

    def test_nan_and_infinities_round_trip(self, tracking: TrackingService):
        run_id = tracking.create_run().run_id
        tracking.log_batch(
            run_id,
            metrics=[
                make_metric("m", math.nan, 0, 1),
                make_metric("m", math.inf, 1, 1),
                make_metric("m", -math.inf, 2, 1),
                make_metric("nan", math.nan, 0, 1),
                make_metric("inf", math.inf, 0, 1),
            ],
        )
        history = [m.value for m in tracking.get_metric_history(run_id, "m")]
        assert math.isnan(history[0]) and history[1:] == [math.inf, -math.inf]
        latest = tracking.get_run(run_id).metrics
        assert isinstance(latest["nan"], float) and math.isnan(latest["nan"])
        assert (latest["m"], latest["inf"]) == (-math.inf, math.inf)

    def test_logging_to_a_deleted_run_raises_invalid_input(self, tracking: TrackingService):
        run_id = tracking.create_run().run_id
        tracking.delete_run(run_id)
        with pytest.raises(InvalidInput, match="deleted"):
            tracking.log_batch(run_id, params=[("p", "1")])
        with pytest.raises(InvalidInput, match="deleted"):
            tracking.log_batch(run_id, metrics=[make_metric("m", 1.0)])
        assert tracking.get_run(run_id).params == {}

    def test_tags_can_be_overwritten_and_deleted(self, tracking: TrackingService):
        run_id = tracking.create_run().run_id
        tracking.log_batch(run_id, tags=[("note", "a")])
        tracking.log_batch(run_id, tags=[("note", "b"), ("note", "c")])
        assert tracking.get_run(run_id).tags["note"] == "c"
        tracking.delete_tag(run_id, "note")
        assert "note" not in tracking.get_run(run_id).tags
        with pytest.raises(NotFound, match="note"):
            tracking.delete_tag(run_id, "note")

    def test_invalid_keys_raise_invalid_input(self, tracking: TrackingService):
        run_id = tracking.create_run().run_id
        calls: dict[str, Callable[[str], object]] = {
            "param": lambda k: tracking.log_batch(run_id, params=[(k, "1")]),
            "tag": lambda k: tracking.log_batch(run_id, tags=[(k, "1")]),
            "metric": lambda k: make_metric(k, 1.0),
        }
        outcomes = {
            (kind, key): _raised(call, key)
            for kind, call in calls.items()
            for key in ["", "a/../b", "semi;colon", "x" * 251]
        }
        assert outcomes == dict.fromkeys(outcomes, "InvalidInput")
        assert tracking.get_run(run_id).params == {}


# -- search_runs -------------------------------------------------------------------------------


@pytest.fixture
def seeded(tracking: TrackingService) -> TrackingService:
    """Four runs in the Default experiment, started at 1000, 2000, 3000 and 4000 ms:

    ====  ======  ====  ======  ===  ====  ========
    name  model   lr    team    acc  loss  status
    ====  ======  ====  ======  ===  ====  ========
    r1    ResNet  0.1   vision  0.9  0.3   FINISHED
    r2    resnet  0.01  Vision  0.5        RUNNING
    r3    VGG                   0.7  NaN   FAILED
    r4                                     RUNNING
    ====  ======  ====  ======  ===  ====  ========
    """
    rows: list[tuple[str, dict[str, str], dict[str, str], dict[str, float], str]] = [
        ("r1", {"model": "ResNet", "lr": "0.1"}, {"team": "vision"}, {"acc": 0.9, "loss": 0.3},
         "FINISHED"),
        ("r2", {"model": "resnet", "lr": "0.01"}, {"team": "Vision"}, {"acc": 0.5}, "RUNNING"),
        ("r3", {"model": "VGG"}, {}, {"acc": 0.7, "loss": math.nan}, "FAILED"),
        ("r4", {}, {}, {}, "RUNNING"),
    ]  # fmt: skip
    for i, (name, params, tags, metrics, status) in enumerate(rows, 1):
        run_id = tracking.create_run(run_name=name, start_time=i * 1000).run_id
        tracking.log_batch(
            run_id,
            metrics=[make_metric(k, v, 0, 1) for k, v in metrics.items()],
            params=list(params.items()),
            tags=list(tags.items()),
        )
        if status != "RUNNING":
            tracking.update_run(run_id, status=status, end_time=i * 1000 + 500)
    return tracking


def _found(tracking: TrackingService, filter_string: str | None = None, **kwargs: Any) -> list[str]:
    runs, _ = tracking.search_runs(filter_string=filter_string, **kwargs)
    return _names(runs)


def _matching(tracking: TrackingService, filter_string: str) -> list[str]:
    return sorted(_found(tracking, filter_string))


def _run_id(tracking: TrackingService, name: str) -> str:
    (run,) = tracking.search_runs(filter_string=f"run_name = '{name}'", view="ALL")[0]
    return run.run_id


METRIC_FILTERS = {
    "metrics.acc > 0.7": ["r1"],
    "metrics.acc >= 0.7": ["r1", "r3"],
    "metrics.acc < 0.7": ["r2"],
    "metrics.acc <= 0.7": ["r2", "r3"],
    "metrics.acc = 0.5": ["r2"],
    "metrics.acc != 0.5": ["r1", "r3"],
    # r3's loss is NaN: no numeric comparison matches it, not even != or a huge range
    "metrics.loss < 1": ["r1"],
    "metrics.loss != 0.3": [],
    "metrics.loss >= -1e300": ["r1"],
    "metrics.loss != -1e300": ["r1"],
}
PARAM_AND_TAG_FILTERS = {
    "params.model = 'ResNet'": ["r1"],
    "params.model != 'ResNet'": ["r2", "r3"],  # r4 lacks the key, so never matches
    "params.model LIKE 'Res%'": ["r1"],
    "params.model LIKE '%net'": ["r2"],
    "params.model LIKE 'res_et'": ["r2"],
    "params.model LIKE '%ESNET'": [],
    "params.model ILIKE '%ESNET'": ["r1", "r2"],
    "params.model ILIKE 'vgg'": ["r3"],
    "params.model IN ('VGG', 'resnet', 'nope')": ["r2", "r3"],
    "params.model NOT IN ('VGG')": ["r1", "r2"],
    "params.model IS NULL": ["r4"],
    "params.model IS NOT NULL": ["r1", "r2", "r3"],
    "params.lr = '0.1'": ["r1"],
    "tags.team = 'vision'": ["r1"],
    "tags.team != 'vision'": ["r2"],
    "tags.team LIKE 'V%'": ["r2"],
    "tags.team ILIKE 'v%'": ["r1", "r2"],
    "tags.team IN ('Vision')": ["r2"],
    "tags.team NOT IN ('Vision')": ["r1"],
    "tags.team IS NULL": ["r3", "r4"],
    "tags.team IS NOT NULL": ["r1", "r2"],
    "tags.`mlflow.runName` = 'r3'": ["r3"],
}
ATTRIBUTE_FILTERS = {
    "attributes.status = 'FINISHED'": ["r1"],
    "attributes.status != 'RUNNING'": ["r1", "r3"],
    "status IN ('FAILED', 'FINISHED')": ["r1", "r3"],
    "attributes.status NOT IN ('FAILED', 'FINISHED')": ["r2", "r4"],
    "attributes.run_name = 'r2'": ["r2"],
    "attributes.run_name LIKE 'r_'": ["r1", "r2", "r3", "r4"],
    "attributes.run_name LIKE 'R%'": [],
    "attributes.run_name ILIKE 'R%'": ["r1", "r2", "r3", "r4"],
    "attributes.start_time > 2000": ["r3", "r4"],
    "attributes.start_time <= 2000": ["r1", "r2"],
    "attributes.created = 3000": ["r3"],
    "attributes.end_time < 2000": ["r1"],
    "attributes.user_id = 'tester'": ["r1", "r2", "r3", "r4"],
    "attributes.experiment_id = '0'": ["r1", "r2", "r3", "r4"],
}


class TestSearchFilters:
    """Each table maps a filter to the sorted names of the seeded runs it matches."""

    def test_metric_comparisons_with_all_six_operators(self, seeded: TrackingService):
        assert {f: _matching(seeded, f) for f in METRIC_FILTERS} == METRIC_FILTERS

    def test_param_and_tag_comparisons_with_like_case_sensitive(self, seeded: TrackingService):
        assert {f: _matching(seeded, f) for f in PARAM_AND_TAG_FILTERS} == PARAM_AND_TAG_FILTERS

    def test_attribute_comparisons(self, seeded: TrackingService):
        r1, r4 = _run_id(seeded, "r1"), _run_id(seeded, "r4")
        expected = {
            **ATTRIBUTE_FILTERS,
            f"attributes.run_id = '{r4}'": ["r4"],
            f"attributes.run_id IN ('{r1}', '{r4}')": ["r1", "r4"],
        }
        assert {f: _matching(seeded, f) for f in expected} == expected

    def test_comparisons_are_combined_with_and(self, seeded: TrackingService):
        text = "metrics.acc >= 0.5 and params.model ILIKE 'res%' and attributes.status = 'RUNNING'"
        assert _matching(seeded, text) == ["r2"]

    def test_bad_search_arguments_raise_invalid_input(self, seeded: TrackingService):
        calls = {
            "filter": {"filter_string": "metrics.acc > 'high'"},
            "order_by": {"order_by": ["metrics.acc SIDEWAYS"]},
            "max_results": {"max_results": 0},
            "page_token": {"page_token": "not-a-token"},
            "view": {"view": "SOME"},
        }
        outcomes = {name: _raised(seeded.search_runs, **kw) for name, kw in calls.items()}
        assert outcomes == dict.fromkeys(calls, "InvalidInput")


class TestSearchOrderAndPaging:
    def test_the_default_order_is_newest_first(self, seeded: TrackingService):
        assert _found(seeded) == ["r4", "r3", "r2", "r1"]

    def test_metric_order_puts_missing_values_last_in_both_directions(
        self, seeded: TrackingService
    ):
        assert _found(seeded, order_by=["metrics.acc DESC"]) == ["r1", "r3", "r2", "r4"]
        assert _found(seeded, order_by=["metrics.acc ASC"]) == ["r2", "r3", "r1", "r4"]

    def test_nan_sorts_after_every_number_and_before_missing_values(self, seeded: TrackingService):
        """As MLflow orders them, in both directions; r4 lacks the metric."""
        seeded.log_batch(_run_id(seeded, "r2"), metrics=[make_metric("loss", -5.0, 0, 1)])
        assert {
            "ASC": _found(seeded, order_by=["metrics.loss ASC"]),
            "DESC": _found(seeded, order_by=["metrics.loss DESC"]),
        } == {"ASC": ["r2", "r1", "r3", "r4"], "DESC": ["r1", "r2", "r3", "r4"]}

    def test_ordering_by_params_and_attributes(self, seeded: TrackingService):
        assert _found(seeded, order_by=["params.model ASC"]) == ["r1", "r3", "r2", "r4"]
        assert _found(seeded, order_by=["params.lr DESC"]) == ["r1", "r2", "r4", "r3"]
        assert _found(seeded, order_by=["attributes.start_time ASC"]) == ["r1", "r2", "r3", "r4"]
        assert _found(seeded, order_by=["attributes.run_name DESC"]) == ["r4", "r3", "r2", "r1"]
        assert _found(seeded, order_by=["status", "start_time DESC"]) == ["r3", "r1", "r4", "r2"]

    def test_page_tokens_cover_every_run_exactly_once(self, tracking: TrackingService):
        # Start times shared in threes: pages must break ties the same way every time.
        made = {tracking.create_run(start_time=1000 + i // 3).run_id for i in range(11)}
        seen: list[str] = []
        token: str | None = None
        pages = 0
        while pages == 0 or token is not None:
            runs, token = tracking.search_runs(max_results=3, page_token=token)
            seen += [r.run_id for r in runs]
            pages += 1
        assert (sorted(seen), pages) == (sorted(made), 4)
        full, last_token = tracking.search_runs(max_results=11)
        assert (len(full), last_token) == (11, None)

    def test_view_types_select_active_deleted_or_all_runs(self, seeded: TrackingService):
        seeded.delete_run(_run_id(seeded, "r2"))
        assert _found(seeded) == ["r4", "r3", "r1"]
        assert _found(seeded, view=ViewType.DELETED_ONLY) == ["r2"]
        assert _found(seeded, view="ALL") == ["r4", "r3", "r2", "r1"]

    def test_experiments_are_chosen_by_id_or_name(self, tracking: TrackingService):
        vision = tracking.create_experiment("vision")
        nlp = tracking.create_experiment("nlp")
        for eid, name in [(vision, "v"), (nlp, "n"), ("0", "d")]:
            tracking.create_run(eid, run_name=name)
        assert _found(tracking) == ["d"]
        assert _found(tracking, experiment_ids=[vision]) == ["v"]
        assert sorted(_found(tracking, experiment_names=["vision", "nlp"])) == ["n", "v"]
        both = _found(tracking, experiment_ids=[nlp], experiment_names=["Default"])
        assert sorted(both) == ["d", "n"]
        with pytest.raises(NotFound, match="nope"):
            tracking.search_runs(experiment_names=["nope"])


# -- artifacts ---------------------------------------------------------------------------------

ESCAPES = ["../x", "/abs", "a/../../b", "a\x00b", "..", "a\\..\\b"]
"""Artifact paths that would leave the run's root (or the local download directory)."""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """``a.txt``, ``sub/b.txt`` and ``sub/deep/c.bin`` under a fresh directory."""
    root = tmp_path / "files"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("beta")
    (root / "sub" / "deep" / "c.bin").write_bytes(bytes(range(256)))
    return root


class TestArtifacts:
    def test_log_artifact_and_log_artifacts_keep_names_and_layout(
        self, tracking: TrackingService, files: Path
    ):
        run_id = tracking.create_run().run_id
        assert tracking.log_artifact(run_id, files / "a.txt") == "a.txt"
        assert tracking.log_artifact(run_id, files / "a.txt", "copies/x") == "copies/x/a.txt"
        assert tracking.log_artifacts(run_id, files, "out") == [
            "out/a.txt",
            "out/sub/b.txt",
            "out/sub/deep/c.bin",
        ]
        assert [(f.path, f.size) for f in tracking.artifact_files(run_id, "out/sub")] == [
            ("out/sub/b.txt", 4),
            ("out/sub/deep/c.bin", 256),
        ]

    def test_list_artifacts_shows_one_directory_level(self, tracking: TrackingService, files: Path):
        run_id = tracking.create_run().run_id
        tracking.log_artifacts(run_id, files)
        root = tracking.list_artifacts(run_id)
        assert [(a.path, a.is_dir, a.size) for a in root] == [
            ("a.txt", False, 5),
            ("sub", True, None),
        ]
        sub = tracking.list_artifacts(run_id, "sub")
        assert [(a.path, a.is_dir) for a in sub] == [("sub/b.txt", False), ("sub/deep", True)]
        (file,) = tracking.list_artifacts(run_id, "sub/deep/c.bin")
        assert (file.path, file.is_dir, file.size) == ("sub/deep/c.bin", False, 256)

    def test_prefix_listing_matches_whole_segments_and_wildcards_literally(
        self, tracking: TrackingService
    ):
        run_id = tracking.create_run().run_id
        for path in ["a%/1", "ab/2", "a_/3", "aX/4", "a%b/5", "axb/6", "sub/7", "subway/8"]:
            tracking.log_bytes(run_id, path, path.encode())
        listed = {p: [f.path for f in tracking.artifact_files(run_id, p)] for p in ["a%", "a_"]}
        listed["a%b"] = [f.path for f in tracking.artifact_files(run_id, "a%b")]
        listed["sub"] = [a.path for a in tracking.list_artifacts(run_id, "sub")]
        assert listed == {"a%": ["a%/1"], "a_": ["a_/3"], "a%b": ["a%b/5"], "sub": ["sub/7"]}

    def test_download_round_trips_bytes(
        self, tracking: TrackingService, files: Path, tmp_path: Path
    ):
        run_id = tracking.create_run().run_id
        tracking.log_artifacts(run_id, files)
        tracking.log_bytes(run_id, "raw/data.bin", b"\x00\xffpayload")
        everything = tracking.download_artifacts(run_id, None, tmp_path / "all")
        assert (everything / "sub" / "deep" / "c.bin").read_bytes() == bytes(range(256))
        assert (everything / "raw" / "data.bin").read_bytes() == b"\x00\xffpayload"
        one = tracking.download_artifacts(run_id, "sub", tmp_path / "one")
        assert one == tmp_path / "one" / "sub"
        assert sorted(p.name for p in one.rglob("*") if p.is_file()) == ["b.txt", "c.bin"]
        with tracking.open_artifact(run_id, "a.txt") as stream:
            assert stream.read() == b"alpha"

    def test_logging_a_path_again_replaces_it(self, tracking: TrackingService, tmp_path: Path):
        run_id = tracking.create_run().run_id
        tracking.log_bytes(run_id, "model.txt", b"v1")
        tracking.log_bytes(run_id, "model.txt", b"version two")
        (row,) = tracking.artifact_files(run_id)
        assert row.size == len(b"version two")
        got = tracking.download_artifacts(run_id, "model.txt", tmp_path / "d")
        assert got.read_bytes() == b"version two"

    def test_missing_artifacts_raise_not_found_and_deleted_runs_take_none(
        self, tracking: TrackingService, tmp_path: Path
    ):
        run_id = tracking.create_run().run_id
        calls: dict[str, Callable[[], object]] = {
            "download": lambda: tracking.download_artifacts(run_id, "nope", tmp_path / "d"),
            "open": lambda: tracking.open_artifact(run_id, "nope"),
            "log_artifact": lambda: tracking.log_artifact(run_id, tmp_path / "no-such-file"),
            "log_artifacts": lambda: tracking.log_artifacts(run_id, tmp_path / "no-such-dir"),
        }
        assert {name: _raised(call) for name, call in calls.items()} == dict.fromkeys(
            calls, "NotFound"
        )
        tracking.delete_run(run_id)
        with pytest.raises(InvalidInput, match="deleted"):
            tracking.log_bytes(run_id, "f.txt", b"x")

    def test_traversal_paths_raise_invalid_input(self, tracking: TrackingService, tmp_path: Path):
        run_id = tracking.create_run().run_id
        tracking.log_bytes(run_id, "ok.txt", b"ok")
        calls: dict[str, Callable[[str], object]] = {
            "log_bytes": lambda p: tracking.log_bytes(run_id, p, b"x"),
            "list": lambda p: tracking.list_artifacts(run_id, p),
            "download": lambda p: tracking.download_artifacts(run_id, p, tmp_path / "d"),
            "open": lambda p: tracking.open_artifact(run_id, p),
        }
        outcomes = {(name, p): _raised(call, p) for name, call in calls.items() for p in ESCAPES}
        assert outcomes == dict.fromkeys(outcomes, "InvalidInput")
        assert [f.path for f in tracking.artifact_files(run_id)] == ["ok.txt"]

    def test_traversal_in_an_artifact_directory_raises_invalid_input(
        self, tracking: TrackingService, files: Path
    ):
        """Including an absolute directory, which MLflow refuses too rather than re-rooting."""
        run_id = tracking.create_run().run_id
        calls: dict[str, Callable[[str], object]] = {
            "log_artifact": lambda d: tracking.log_artifact(run_id, files / "a.txt", d),
            "log_artifacts": lambda d: tracking.log_artifacts(run_id, files, d),
        }
        outcomes = {(name, d): _raised(call, d) for name, call in calls.items() for d in ESCAPES}
        assert outcomes == dict.fromkeys(outcomes, "InvalidInput")
        assert tracking.artifact_files(run_id) == []


# -- purge and garbage collection --------------------------------------------------------------


def _rows_of(workspace: Workspace, run_id: str) -> dict[str, int]:
    counts = {}
    with workspace.database.read() as conn:
        for table in (t.runs, t.params, t.tags, t.metrics, t.latest_metrics, t.run_artifacts):
            query = select(func.count()).select_from(table).where(table.c.run_id == run_id)
            counts[table.name] = conn.execute(query).scalar_one()
        refs = select(func.count()).select_from(t.blob_refs).where(t.blob_refs.c.owner_id == run_id)
        counts["blob_refs"] = conn.execute(refs).scalar_one()
    return counts


def _full_run(tracking: TrackingService, payload: bytes) -> str:
    run_id = tracking.create_run().run_id
    tracking.log_batch(
        run_id,
        metrics=[make_metric("m", 1.0, 0, 1), make_metric("m", 2.0, 1, 2)],
        params=[("p", "1")],
        tags=[("t", "x")],
    )
    tracking.log_bytes(run_id, "out/file.bin", payload)
    return run_id


class TestPurge:
    def test_purging_removes_a_deleted_run_and_every_row_it_owned(
        self, workspace: Workspace, tracking: TrackingService
    ):
        doomed = _full_run(tracking, b"doomed")
        kept = _full_run(tracking, b"kept")
        tracking.delete_run(doomed)
        assert tracking.purge_deleted_runs() == [doomed]
        assert set(_rows_of(workspace, doomed).values()) == {0}
        with pytest.raises(NotFound):
            tracking.get_run(doomed)
        assert _rows_of(workspace, kept) == {
            "runs": 1,
            "params": 1,
            "tags": 3,  # t, mlflow.runName, mlflow.user
            "metrics": 2,
            "latest_metrics": 1,
            "run_artifacts": 1,
            "blob_refs": 1,
        }

    def test_active_and_recently_deleted_runs_are_kept(self, tracking: TrackingService):
        active = _full_run(tracking, b"a")
        recent = _full_run(tracking, b"r")
        tracking.delete_run(recent)
        assert tracking.purge_deleted_runs(older_than_ms=3_600_000) == []
        assert tracking.deleted_run_ids() == [recent]
        assert tracking.get_run(recent).info.lifecycle_stage == LifecycleStage.DELETED
        assert tracking.get_run(active).params == {"p": "1"}

    def test_gc_deletes_a_purged_runs_blob_but_keeps_one_another_run_references(
        self, workspace: Workspace, tracking: TrackingService, tmp_path: Path
    ):
        doomed = _full_run(tracking, b"only the doomed run has this")
        tracking.log_bytes(doomed, "shared.bin", b"both runs have this")
        kept = tracking.create_run().run_id
        tracking.log_bytes(kept, "copy/shared.bin", b"both runs have this")
        (own,) = [f.digest for f in tracking.artifact_files(doomed, "out")]
        (shared,) = [f.digest for f in tracking.artifact_files(kept)]
        tracking.delete_run(doomed)

        report = workspace.gc(grace_seconds=0)

        assert report.purged_runs == [doomed]
        assert not workspace.blobs.exists(own)
        assert workspace.blobs.exists(shared)
        got = tracking.download_artifacts(kept, "copy/shared.bin", tmp_path / "d")
        assert got.read_bytes() == b"both runs have this"
