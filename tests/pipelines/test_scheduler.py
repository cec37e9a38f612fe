"""The scheduler: cron times, dataset/alert/manual triggers, catch-up, and restart safety.

Time is injected (``tick(now=...)``, or a clock file for the real ``loopline scheduler``
process), so no test waits for a real minute. Launches are counted in the file the target
appends to (tests/pipelines/scheduled_targets.py). The store-facing behaviour runs on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline.config import Settings
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.pipelines.schedule_entities import NewFire
from loopline.pipelines.scheduler import Scheduler
from loopline.store.sql_schedules import SqlScheduleStore
from loopline.workspace import Workspace, init_workspace
from tests.processes import REPO_ROOT, Children, wait_until
from tests.test_cli import run

APPEND = "tests.pipelines.scheduled_targets:append_line"
T0 = dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=dt.UTC)
"""When the test schedules are added: 30 s past a minute, so '* * * * *' is next due at 00:01."""


def minute(n: int, second: int = 10) -> dt.datetime:
    """``n`` minutes after midnight of T0's day, ``second`` seconds into it."""
    return T0.replace(minute=n, second=second)


def cron_key(moment: dt.datetime) -> str:
    return f"cron:{int(moment.timestamp() * 1000)}"


def launches(out: Path) -> list[str]:
    """The fire key of each launch, in launch order."""
    return [line.split()[0] for line in out.read_text().splitlines()] if out.exists() else []


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        yield request.getfixturevalue("postgres_uri")


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """A SQLite workspace; tests of store behaviour use ``any_ws`` instead."""
    with Workspace(Settings.for_home(tmp_path / "ws")) as workspace:
        yield workspace


@pytest.fixture
def any_ws(store_uri: str, tmp_path: Path) -> Iterator[Workspace]:
    with Workspace(Settings.for_home(tmp_path / "ws", store_uri=store_uri)) as workspace:
        yield workspace


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "launches.txt"


def at(ws: Workspace, moment: dt.datetime = T0, **options: object) -> Scheduler:
    return Scheduler(ws, clock=lambda: moment, **options)  # type: ignore[arg-type]


class TestRegistering:
    def test_add_list_disable_remove(self, ws: Workspace, out: Path):
        """A schedule is listed with its trigger, can be paused, and is gone after removal."""
        sched = at(ws)
        sched.add_schedule("nightly", APPEND, cron="0 3 * * *", params={"out": str(out)})
        sched.add_schedule("on-data", APPEND, dataset="wine", catch_up="all")
        assert [(s.name, s.kind, s.trigger) for s in sched.list()] == [
            ("nightly", "cron", "cron '0 3 * * *' (UTC)"),
            ("on-data", "dataset", "new version of dataset 'wine'"),
        ]
        assert not sched.disable("nightly").enabled
        sched.remove("nightly")
        with pytest.raises(NotFound, match="nightly"):
            sched.get("nightly")
        actions = [e.action for e in ws.events.list(object_kind="schedule")]
        assert actions == [
            "schedule.created",
            "schedule.created",
            "schedule.disabled",
            "schedule.removed",
        ]

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"cron": "61 * * * *"}, "invalid cron expression"),
            ({"cron": "* * * * *", "dataset": "d"}, "one trigger per schedule"),
            ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "unknown timezone"),
            ({"catch_up": "some"}, "catch_up must be one of"),
        ],
    )
    def test_rejects_invalid_input_naming_what_is_wrong(
        self, ws: Workspace, kwargs: dict[str, str], message: str
    ):
        with pytest.raises(InvalidInput, match=message):
            at(ws).add_schedule("s", APPEND, **kwargs)  # type: ignore[arg-type]

    def test_rejects_a_bad_target_and_a_duplicate_name(self, ws: Workspace):
        sched = at(ws)
        with pytest.raises(InvalidInput, match=r"module\.path:function"):
            sched.add_schedule("s", "not a target")
        sched.add_schedule("s", APPEND)
        with pytest.raises(AlreadyExists, match="'s' already exists"):
            sched.add_schedule("s", APPEND)


class TestCron:
    def test_fires_once_per_slot_and_not_before_the_first(self, ws: Workspace, out: Path):
        """Ticks within a minute do not fire again; the run carries the trigger's tags."""
        sched = at(ws)
        sched.add_schedule("m", APPEND, cron="* * * * *", params={"out": str(out)})
        assert sched.tick(T0 + dt.timedelta(seconds=20)) == []
        (fire,) = sched.tick(minute(1, 0))
        assert sched.tick(minute(1, 40)) == []
        assert (fire.key, fire.status, fire.trigger) == (cron_key(minute(1, 0)), "done", "cron")
        assert launches(out) == [fire.key]
        run = ws.tracking.get_run(fire.run_id or "")
        assert run.tags["loopline.trigger"] == "cron"
        assert run.tags["loopline.schedule"] == "m"
        assert run.tags["loopline.fire_id"] == str(fire.id)
        assert run.info.status == "FINISHED"

    def test_catch_up_latest_fires_once_for_the_most_recent_missed_slot(
        self, ws: Workspace, out: Path
    ):
        sched = at(ws)
        sched.add_schedule("m", APPEND, cron="*/5 * * * *", params={"out": str(out)})
        fires = sched.tick(minute(23))  # down from 00:00:30 to 00:23:10: 00:05 ... 00:20 missed
        assert [f.key for f in fires] == [cron_key(minute(20, 0))]
        assert sched.tick(minute(24)) == []
        assert launches(out) == [cron_key(minute(20, 0))]

    def test_catch_up_all_fires_each_missed_slot_oldest_first(self, ws: Workspace, out: Path):
        sched = at(ws)
        sched.add_schedule(
            "m", APPEND, cron="*/5 * * * *", params={"out": str(out)}, catch_up="all"
        )
        fires = sched.tick(minute(23))
        expected = [cron_key(minute(n, 0)) for n in (5, 10, 15, 20)]
        assert [f.key for f in fires] == expected
        assert sched.tick(minute(23)) == []
        assert launches(out) == expected

    def test_evaluates_in_the_schedule_timezone(self, ws: Workspace, out: Path):
        """09:00 in Berlin is 08:00 UTC in January."""
        sched = at(ws)
        sched.add_schedule(
            "m", APPEND, cron="0 9 * * *", timezone="Europe/Berlin", params={"out": str(out)}
        )
        assert sched.tick(T0.replace(hour=7, minute=59)) == []
        (fire,) = sched.tick(T0.replace(hour=8, minute=0, second=1))
        assert fire.scheduled == T0.replace(hour=8, minute=0, second=0)

    def test_what_was_due_while_disabled_does_not_fire(self, ws: Workspace, out: Path):
        sched = at(ws)
        sched.add_schedule("m", APPEND, cron="* * * * *", params={"out": str(out)})
        sched.disable("m")
        assert sched.tick(minute(5)) == []
        at(ws, minute(5)).enable("m")
        assert sched.tick(minute(5, 50)) == []
        assert [f.key for f in sched.tick(minute(6))] == [cron_key(minute(6, 0))]


class TestDatasetTrigger:
    def test_fires_once_per_new_version(self, ws: Workspace, out: Path, tmp_path: Path):
        """Versions that existed before the schedule and unchanged re-adds do not fire."""
        data = tmp_path / "data.txt"
        data.write_text("one")
        ws.data.add(str(data), "wine")
        sched = at(ws)
        sched.add_schedule("retrain", APPEND, dataset="wine", params={"out": str(out)})
        assert sched.tick(T0) == []
        data.write_text("two")
        ws.data.add(str(data), "wine")
        (fire,) = sched.tick(T0)
        assert sched.tick(T0) == []
        ws.data.add(str(data), "wine")  # unchanged: no new version
        assert sched.tick(T0) == []
        assert fire.key == "dataset:2"
        assert ws.tracking.get_run(fire.run_id or "").tags["loopline.trigger.dataset"] == "wine@2"
        assert launches(out) == ["dataset:2"]

    @pytest.mark.parametrize(("catch_up", "keys"), [("latest", [3]), ("all", [1, 2, 3])])
    def test_catch_up_applies_to_versions_added_between_ticks(
        self, ws: Workspace, out: Path, tmp_path: Path, catch_up: str, keys: list[int]
    ):
        sched = at(ws)
        sched.add_schedule(
            "retrain", APPEND, dataset="wine", params={"out": str(out)}, catch_up=catch_up
        )
        data = tmp_path / "data.txt"
        for text in ("one", "two", "three"):
            data.write_text(text)
            ws.data.add(str(data), "wine")
        assert [f.key for f in sched.tick(T0)] == [f"dataset:{k}" for k in keys]


class TestAlertTrigger:
    def test_fires_on_the_named_alert_only(self, ws: Workspace, out: Path):
        ws.events.record(None, "alert.fired", "alert", "drift", {})  # before the schedule
        sched = at(ws)
        sched.add_schedule("retrain", APPEND, alert="drift", params={"out": str(out)})
        ws.events.record(None, "alert.fired", "alert", "latency", {})
        assert sched.tick(T0) == []
        ws.events.record(None, "alert.fired", "monitor", "m1", {"alert": "drift"})
        (fire,) = sched.tick(T0)
        assert sched.tick(T0) == []
        assert fire.trigger == "alert"
        assert launches(out) == [fire.key]

    def test_catch_up_all_fires_for_each_alert(self, ws: Workspace, out: Path):
        sched = at(ws)
        sched.add_schedule(
            "retrain", APPEND, alert="drift", params={"out": str(out)}, catch_up="all"
        )
        for _ in range(3):
            ws.events.record(None, "alert.fired", "alert", "drift", {})
        assert len(sched.tick(T0)) == 3
        assert sched.tick(T0) == []
        assert len(launches(out)) == 3

    @pytest.mark.parametrize("catch_up", ["latest", "all"])
    def test_an_alert_committed_after_a_higher_event_id_still_fires_once(
        self, ws: Workspace, out: Path, catch_up: str
    ):
        """PostgreSQL hands out ids before commit: the trigger looks back below its cursor."""
        sched = at(ws)
        schedule = sched.add_schedule(
            "retrain", APPEND, alert="drift", params={"out": str(out)}, catch_up=catch_up
        )
        ws.events.record(None, "alert.fired", "alert", "drift", {})
        ws.events.record(None, "alert.fired", "alert", "latency", {})
        late, seen = ws.events.list(action="alert.fired", limit=10)
        SqlScheduleStore(ws.database).advance_cursor(schedule.id, seen.id)  # saw only `seen`
        assert [f.key for f in sched.tick(T0)] == [f"alert:{late.id}"]
        assert sched.tick(T0) == []


class TestManualTrigger:
    def test_launches_now_with_merged_params(self, ws: Workspace, out: Path):
        sched = at(ws)
        sched.add_schedule("adhoc", APPEND, params={"out": str(out), "lr": "0.1"})
        fire = sched.trigger("adhoc", {"lr": "0.5"})
        assert (fire.status, fire.trigger, fire.params["lr"]) == ("done", "manual", "0.5")
        assert out.read_text().split()[1:] == ["manual", "lr=0.5"]

    def test_a_repeated_request_id_fires_once(self, ws: Workspace, out: Path):
        sched = at(ws)
        sched.add_schedule("adhoc", APPEND, params={"out": str(out)})
        first = sched.trigger("adhoc", request_id="req-1")
        again = sched.trigger("adhoc", request_id="req-1")
        assert first.id == again.id
        assert launches(out) == ["manual:req-1"]

    def test_a_queued_trigger_is_launched_by_the_next_tick(self, ws: Workspace, out: Path):
        sched = at(ws)
        sched.add_schedule("adhoc", APPEND, params={"out": str(out)})
        queued = sched.trigger("adhoc", wait=False)
        assert queued.status == "pending" and not out.exists()
        (fire,) = at(ws).tick(T0)
        assert (fire.id, fire.status) == (queued.id, "done")

    def test_a_failing_target_marks_the_fire_failed_and_logs_it(self, ws: Workspace):
        sched = at(ws)
        sched.add_schedule("broken", "tests.pipelines.scheduled_targets:fail")
        fire = sched.trigger("broken")
        assert fire.status == "failed"
        assert fire.error == "RuntimeError: the target failed on purpose"
        assert ws.tracking.get_run(fire.run_id or "").info.status == "FAILED"
        actions = [e.action for e in ws.events.list(object_kind="schedule")]
        assert actions[-2:] == ["schedule.fired", "schedule.failed"]

    def test_a_target_that_is_not_callable_fails_clearly(self, ws: Workspace):
        sched = at(ws)
        sched.add_schedule("odd", "tests.pipelines.scheduled_targets:not_callable")
        assert "neither a pipeline nor callable" in (sched.trigger("odd").error or "")


class TestStopping:
    def test_fires_recorded_but_not_launched_when_stopping_go_to_the_next_scheduler(
        self, ws: Workspace, out: Path
    ):
        """Stop lets the launch in progress finish and releases the others' leases at once."""
        first = at(ws, before_launch=lambda fire: first.stop())
        first.add_schedule("m", APPEND, cron="* * * * *", params={"out": str(out)}, catch_up="all")
        assert [f.key for f in first.tick(minute(3))] == [cron_key(minute(1, 0))]
        rest = at(ws).tick(minute(3))
        assert [f.key for f in rest] == [cron_key(minute(n, 0)) for n in (2, 3)]
        assert launches(out) == [cron_key(minute(n, 0)) for n in (1, 2, 3)]

    def test_run_forever_returns_when_its_stop_event_is_set(self, ws: Workspace):
        stop = threading.Event()
        sched = at(ws)
        loop = threading.Thread(target=sched.run_forever, args=(0.01, stop))
        loop.start()
        stop.set()
        loop.join(10)
        assert not loop.is_alive()


class TestPipelineTargets:
    def test_a_pipeline_target_runs_through_the_pipeline_runner(self, ws: Workspace, out: Path):
        """The pipeline run carries the trigger's tags; a failed pipeline fails the fire."""
        sched = at(ws)
        sched.add_schedule(
            "pipe",
            "tests.pipelines.scheduled_targets:append_pipeline",
            params={"out": str(out), "note": "first"},
        )
        sched.add_schedule("broken", "tests.pipelines.scheduled_targets:failing_pipeline")
        fire = sched.trigger("pipe")
        assert fire.status == "done", fire.error
        assert out.read_text() == "pipeline first\n"
        tags = ws.tracking.get_run(fire.run_id or "").tags
        assert (tags["loopline.trigger"], tags["loopline.schedule"]) == ("manual", "pipe")
        failed = sched.trigger("broken")
        assert failed.status == "failed" and failed.run_id
        assert "step failed on purpose" in (failed.error or "")


class TestRestartSafety:
    def test_two_schedulers_ticking_the_same_instant_launch_once(
        self, any_ws: Workspace, out: Path
    ):
        """The unique fire key (and the cursor check under the schedule's row lock) lets one
        of them record the slot; the other records nothing."""
        at(any_ws).add_schedule("m", APPEND, cron="* * * * *", params={"out": str(out)})
        at(any_ws).add_schedule(
            "all", APPEND, cron="* * * * *", params={"out": str(out)}, catch_up="all"
        )
        schedulers = [at(any_ws), at(any_ws)]
        barrier = threading.Barrier(2)
        results: list[list[object]] = [[], []]

        def tick(i: int) -> None:
            barrier.wait()
            results[i] = schedulers[i].tick(minute(3))  # type: ignore[assignment]

        threads = [threading.Thread(target=tick, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sum(len(r) for r in results) == 4  # m: 00:03; all: 00:01, 00:02, 00:03
        assert sorted(launches(out)) == sorted(
            [cron_key(minute(3, 0))] + [cron_key(minute(n, 0)) for n in (1, 2, 3)]
        )
        fired = any_ws.events.list(action="schedule.fired", limit=100)
        assert len(fired) == 4

    def test_an_unfinished_fire_whose_lease_ran_out_is_relaunched_once(
        self, any_ws: Workspace, out: Path
    ):
        """A scheduler died after recording (the cursor moved with the fire): the next one
        launches that fire, does not record the slot again, and a third finds nothing."""
        sched = at(any_ws)
        schedule = sched.add_schedule("m", APPEND, cron="* * * * *", params={"out": str(out)})
        store = SqlScheduleStore(any_ws.database)
        slot = minute(1, 0)
        dead = store.record_fire(
            schedule.id,
            NewFire(
                cron_key(slot),
                "cron",
                int(slot.timestamp() * 1000),
                {"out": str(out)},
                cursor=int(slot.timestamp() * 1000),
            ),
            owner="dead-host:1:x",
            lease_until_ms=1,
            after_cursor=True,
            actor="test",
        )
        assert dead is not None
        (fire,) = at(any_ws).tick(minute(1, 30))
        assert (fire.id, fire.status, fire.attempts) == (dead.id, "done", 2)
        assert at(any_ws).tick(minute(1, 40)) == []
        assert launches(out) == [cron_key(slot)]

    def test_a_fire_held_by_a_live_scheduler_is_left_alone(self, any_ws: Workspace, out: Path):
        schedule = at(any_ws).add_schedule("adhoc", APPEND, params={"out": str(out)})
        store = SqlScheduleStore(any_ws.database)
        held = store.record_fire(
            schedule.id,
            NewFire("manual:x", "manual", 0, {"out": str(out)}),
            owner="alive:1:x",
            lease_until_ms=time.time_ns() // 1_000_000 + 60_000,
            after_cursor=False,
            actor="test",
        )
        assert at(any_ws).tick(T0) == []
        assert store.get_fire(held.id).status == "pending"  # type: ignore[union-attr]

    def test_a_fire_whose_launch_keeps_dying_is_abandoned(self, ws: Workspace, out: Path):
        """The run the dead scheduler had started is ended KILLED; after max_attempts the
        fire is failed rather than launched again."""
        schedule = at(ws).add_schedule("adhoc", APPEND, params={"out": str(out)})
        store = SqlScheduleStore(ws.database)
        fire = store.record_fire(
            schedule.id,
            NewFire("manual:x", "manual", 0, {"out": str(out)}),
            owner="dead:1:x",
            lease_until_ms=1,
            after_cursor=False,
            actor="test",
        )
        assert fire is not None
        orphan = ws.tracking.create_run(run_name="orphan")
        store.mark_launched(fire.id, "dead:1:x", orphan.run_id)
        (abandoned,) = at(ws, max_attempts=1).tick(T0)
        assert abandoned.status == "failed" and "abandoned after 1 attempts" in str(abandoned.error)
        assert ws.tracking.get_run(orphan.run_id).info.status == "KILLED"
        assert not out.exists()


# -- the real `loopline scheduler`, killed and restarted --------------------------------------
def scheduler_process(home: str, *args: str) -> None:
    """In a child: run the ``loopline`` CLI's scheduler command in this interpreter."""
    from loopline.cli.main import main

    sys.argv = ["loopline", "--home", home, "scheduler", *args]
    main()


def test_a_killed_scheduler_neither_misses_nor_doubles_a_fire(tmp_path: Path, out: Path):
    """SIGKILL after a fire is recorded and before it is marked: the restarted scheduler
    launches that fire exactly once and the next slot exactly once, then exits 0 on SIGTERM."""
    home = tmp_path / "ws"
    with init_workspace(home) as ws:
        at(ws).add_schedule("minutely", APPEND, cron="* * * * *", params={"out": str(out)})
    clock, marker = tmp_path / "clock.txt", tmp_path / "hanging"
    clock.write_text(minute(1).isoformat())
    env = {"LOOPLINE_SCHEDULER_CLOCK_FILE": str(clock), "NO_COLOR": "1"}
    options = (str(home), "--poll", "0.05", "--lease", "1")
    with Children(tmp_path / "logs") as children:
        first = children.start(
            "tests.pipelines.test_scheduler:scheduler_process",
            *options,
            env={**env, "LOOPLINE_SCHEDULER_HANG_FILE": str(marker)},
        )
        wait_until(marker.exists, what="the first fire to be recorded", timeout=30, watch=[first])
        first.kill()
        with Workspace(Settings.for_home(home)) as ws:
            (recorded,) = SqlScheduleStore(ws.database).list_fires("minutely")
        assert (recorded.key, recorded.status) == (cron_key(minute(1, 0)), "pending")
        assert launches(out) == []

        clock.write_text(minute(2).isoformat())
        second = children.start(
            "tests.pipelines.test_scheduler:scheduler_process", *options, env=env
        )
        wait_until(lambda: len(launches(out)) >= 2, what="two launches", timeout=30, watch=[second])
        time.sleep(0.5)  # several more ticks: nothing else may launch
        os.kill(second.proc.pid, signal.SIGTERM)
        second.finish(timeout=30)
    assert sorted(launches(out)) == [cron_key(minute(1, 0)), cron_key(minute(2, 0))]
    with Workspace(Settings.for_home(home)) as ws:
        fires = SqlScheduleStore(ws.database).list_fires("minutely")
        assert [(f.key, f.status, f.attempts) for f in fires] == [
            (cron_key(minute(2, 0)), "done", 1),
            (cron_key(minute(1, 0)), "done", 2),
        ]
        assert len(ws.events.list(action="schedule.fired")) == 2
        assert len(ws.events.list(action="schedule.launched")) == 2
    assert "scheduler stopped" in second.output()


def test_cli_add_list_trigger_history(tmp_path: Path, out: Path):
    """The commands as real processes: output, the trigger's line and exit codes."""
    init_workspace(tmp_path / "ws").close()
    env = {"PYTHONPATH": str(REPO_ROOT)}

    def loopline(*args: str):
        result = run("--home", str(tmp_path / "ws"), *args, cwd=tmp_path, env=env)
        return result

    added = loopline(
        "schedule", "add", "adhoc", "--target", APPEND, "--param", f"out={out}", "-p", "lr=1"
    )
    assert added.returncode == 0, added.stderr
    assert "schedule 'adhoc' added" in added.stdout
    assert "adhoc" in loopline("schedule", "list").stdout
    fired = loopline("schedule", "trigger", "adhoc", "-p", "lr=2")
    assert fired.returncode == 0, fired.stderr
    assert "adhoc fire 1 (manual:" in fired.stdout and " done run " in fired.stdout
    history = loopline("schedule", "history", "adhoc")
    assert "manual" in history.stdout and "done" in history.stdout
    once = loopline("scheduler", "--once")
    assert once.returncode == 0, once.stderr
    bad = loopline("schedule", "add", "x", "--target", APPEND, "--param", "nope")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    assert launches(out) == [out.read_text().split()[0]]
