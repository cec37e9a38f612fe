"""Queued runs (``fluent.start_queued_run``, a study's trials): created, logged to and ended
through the background writer, written whole in one transaction per batch, and yet read back
exactly as runs created the ordinary way."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopline as ll
from loopline.entities import Ref
from loopline.errors import InvalidInput
from loopline.tracking import fluent
from loopline.tracking.entities import Metric
from loopline.tracking.writer import BatchWriter


@pytest.fixture
def ws(tmp_path: Path) -> ll.Workspace:
    return ll.use_workspace(tmp_path / "ws")  # type: ignore[return-value]


def _parent() -> ll.ActiveRun:
    return ll.start_run(run_name="study", capture=False)


class TestFluent:
    def test_a_queued_run_reads_back_like_an_ordinary_one(self, ws: ll.Workspace):
        with _parent() as parent:
            with fluent.start_queued_run(
                parent.info.experiment_id, "trial-0", parent.run_id, tags={"k": "v"}
            ) as trial:
                assert ll.active_run().run_id == trial.run_id  # type: ignore[union-attr]
                ll.log_param("x", 1.5)
                ll.log_metric("loss", 0.5, step=0)
                ll.log_metric("loss", 0.25, step=1)
                ll.set_tag("state", "ok")
            assert ll.active_run().run_id == parent.run_id  # type: ignore[union-attr]
            with ll.start_run(run_name="ordinary", nested=True, capture=False) as ordinary:
                ll.log_param("x", 1.5)
        queued = ll.get_run(trial.run_id)
        assert queued.info.status == "FINISHED" and queued.info.end_time is not None
        assert queued.info.run_name == "trial-0"
        assert queued.info.parent_run_id == parent.run_id
        assert queued.params == {"x": "1.5"}
        assert queued.metrics == {"loss": 0.25}
        assert queued.tags["k"] == "v" and queued.tags["state"] == "ok"
        assert queued.tags["mlflow.parentRunId"] == parent.run_id
        assert [m.value for m in ll.get_metric_history(trial.run_id, "loss")] == [0.5, 0.25]
        same = ll.get_run(ordinary.run_id)
        assert set(queued.tags) - {"k", "state"} == set(same.tags)
        assert queued.info.artifact_uri.replace(trial.run_id, ordinary.run_id) == (
            same.info.artifact_uri
        )
        found = ll.search_runs(filter_string="params.x = '1.5'", output_format="list")
        assert {r.run_id for r in found} == {trial.run_id, ordinary.run_id}
        for run_id in (trial.run_id, ordinary.run_id):
            actions = [e.action for e in ws.events.list(object_kind="run", object_id=run_id)]
            assert actions == ["run.created", "run.ended"]
        assert Ref("run", trial.run_id) in ws.lineage.downstream_objects(Ref("run", parent.run_id))

    def test_failure_and_interruption_end_queued_runs_as_they_end_others(self, ws: ll.Workspace):
        with _parent() as parent:
            with (
                pytest.raises(RuntimeError),
                fluent.start_queued_run(parent.info.experiment_id, "t1", parent.run_id) as failed,
            ):
                raise RuntimeError("boom")
            with (
                pytest.raises(KeyboardInterrupt),
                fluent.start_queued_run(parent.info.experiment_id, "t2", parent.run_id) as killed,
            ):
                raise KeyboardInterrupt
        assert ll.get_run(failed.run_id).info.status == "FAILED"
        assert ll.get_run(killed.run_id).info.status == "KILLED"

    def test_artifacts_of_a_queued_run_wait_for_its_creation(self, ws: ll.Workspace):
        """The artifact calls write synchronously, so they first flush the queued run."""
        with _parent() as parent:
            with fluent.start_queued_run(parent.info.experiment_id, "t", parent.run_id) as trial:
                path = ll.log_text("hello", "notes/hello.txt")
            assert path == "notes/hello.txt"
        stored = ws.tracking.open_artifact(trial.run_id, "notes/hello.txt").read()
        assert stored == b"hello"

    def test_a_param_changed_inside_a_queued_run_is_refused_at_once(self, ws: ll.Workspace):
        with (
            _parent() as parent,
            fluent.start_queued_run(parent.info.experiment_id, "t", parent.run_id),
        ):
            ll.log_param("x", 1)
            with pytest.raises(ll.Conflict, match="params cannot change"):
                ll.log_param("x", 2)


class TestWriter:
    def test_runs_queued_together_share_one_write_and_a_bad_one_spares_the_rest(
        self, ws: ll.Workspace
    ):
        """Three runs in one batch, one of them in an experiment deleted meanwhile: the other
        two are stored whole, the error surfaces at the next flush."""
        service = ws.tracking
        keep = service.get_experiment(service.create_experiment("keep"))
        doomed = service.get_experiment(service.create_experiment("doomed"))
        writes: list[int] = []
        original = service.write_runs

        def counting(records):  # type: ignore[no-untyped-def]
            writes.append(len(records))
            original(records)

        service.write_runs = counting  # type: ignore[method-assign]
        writer = BatchWriter(service.log_batch, runs=service, interval=60)
        try:
            records = [
                service.plan_run(keep, "a"),
                service.plan_run(doomed, "b"),
                service.plan_run(keep, "c"),
            ]
            service.delete_experiment(doomed.experiment_id)
            for record in records:
                writer.submit_run(record)
                writer.submit(record.info.run_id, metrics=[Metric("m", 1.0, 1, 0)])
                writer.submit_end(record.info.run_id, "FINISHED", 2)
            with pytest.raises(InvalidInput, match="deleted"):
                writer.flush(timeout=30)
        finally:
            writer.close(timeout=30)
        assert writes[0] == 3, "the batch is first tried as one write"
        a, c = (service.get_run(records[i].info.run_id) for i in (0, 2))
        for run in (a, c):
            assert run.info.status == "FINISHED" and run.info.end_time == 2
            assert run.metrics == {"m": 1.0}
        with pytest.raises(ll.NotFound):
            service.get_run(records[1].info.run_id)

    def test_values_logged_after_a_queued_end_are_kept(self, ws: ll.Workspace):
        """A tag set on a run whose end still waits in the queue (the best trial's tag) is
        stored with it; the run stays FINISHED."""
        service = ws.tracking
        experiment = service.get_experiment("0")
        writer = BatchWriter(service.log_batch, runs=service, interval=0.05)
        try:
            record = service.plan_run(experiment, "r")
            writer.submit_run(record)
            writer.submit_end(record.info.run_id, "FINISHED", 5)
            writer.submit(record.info.run_id, tags=[("best", "true")])
            writer.flush(timeout=30)
        finally:
            writer.close(timeout=30)
        run = service.get_run(record.info.run_id)
        assert run.info.status == "FINISHED" and run.tags["best"] == "true"


def test_run_ids_are_mlflow_shaped_and_ordered_by_creation():
    """32 lowercase hex characters like MLflow's, led by the creation millisecond (so new
    rows append to the run-id indexes instead of landing on random pages)."""
    import re
    import time

    from loopline.tracking.service import new_run_id

    ids = []
    for _ in range(3):
        ids.append(new_run_id())
        time.sleep(0.002)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert abs(int(ids[-1][:12], 16) - time.time_ns() // 1_000_000) < 60_000
    assert len({new_run_id() for _ in range(10_000)}) == 10_000
