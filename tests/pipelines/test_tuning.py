"""``ll.tune``: Optuna studies where every trial is a tracked child run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import loopline as ll
from loopline.config import Settings
from loopline.pipelines import pipeline, run, step
from loopline.pipelines.tuning import (
    TAG_BEST,
    TAG_STATE,
    TAG_STUDY,
    TAG_TRIAL,
    Trial,
    build_search_space,
    tune,
)
from loopline.workspace import Workspace

optuna = pytest.importorskip("optuna", reason="tuning needs the 'tune' extra (optuna)")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def quadratic(params: dict[str, Any]) -> float:
    return (params["x"] - 2.0) ** 2


@step
def tuning_step(n_trials: int) -> dict:
    result = tune(quadratic, {"x": ("uniform", 0, 4)}, n_trials, "minimize", study_name="in-step")
    return {"best": result.best_params, "parent": result.parent_run_id}


@pipeline
def tuning_pipeline(n_trials: int = 3):
    tuning_step(n_trials)


def children(parent_run_id: str) -> list[ll.Run]:
    runs = ll.search_runs(
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
        search_all_experiments=True,
        output_format="list",
    )
    return sorted(runs, key=lambda r: int(r.tags[TAG_TRIAL]))


class TestTune:
    def test_a_seeded_study_finds_the_minimum_of_a_quadratic(self, ws: ll.Workspace):
        """TPE with a seed gets near x = 2 in 30 trials; every trial is reported back."""
        result = tune(
            quadratic, {"x": ("uniform", -10.0, 10.0)}, 30, "minimize", seed=0, storage="memory"
        )
        assert abs(result.best_params["x"] - 2.0) < 1.0  # type: ignore[index]
        assert result.best_value == pytest.approx(quadratic(result.best_params))  # type: ignore[arg-type]
        assert [t.number for t in result.trials] == list(range(30))
        assert all(t.state == "COMPLETE" and t.run_id for t in result.trials)

    def test_each_trial_is_a_child_run_with_its_params_and_metric(self, ws: ll.Workspace):
        """The parent holds the search space and settings; each child its params, the value
        under ``metric`` and its state; the best child is tagged and the parent gets best_*."""
        space = {
            "lr": ("loguniform", 1e-4, 1e-1),
            "depth": ("int", 2, 8),
            "kernel": ("categorical", ["rbf", "linear"]),
        }

        def objective(params: dict[str, Any], trial: Trial) -> float:
            assert trial.params == params and ll.active_run().run_id == trial.run_id  # type: ignore[union-attr]
            ll.log_metric("extra", 1.0)  # logging inside the objective goes to the trial run
            return params["depth"] + (params["kernel"] == "rbf")

        result = tune(objective, space, 5, metric="score", seed=1, study_name="s1")
        parent = ll.get_run(result.parent_run_id)
        assert parent.tags[TAG_STUDY] == "s1"
        assert parent.params["space.lr"] == "float(0.0001, 0.1, log)"
        assert parent.params["space.depth"] == "int(2, 8)"
        assert parent.params["direction"] == "maximize"
        assert parent.metrics["best_score"] == result.best_value
        assert parent.tags["best_depth"] == str(result.best_params["depth"])  # type: ignore[index]
        kids = children(result.parent_run_id)
        assert [int(k.tags[TAG_TRIAL]) for k in kids] == [0, 1, 2, 3, 4]
        for kid, trial in zip(kids, result.trials, strict=True):
            assert kid.run_id == trial.run_id and kid.info.status == "FINISHED"
            assert kid.params == {k: str(v) for k, v in trial.params.items()}
            assert kid.metrics["score"] == trial.value and kid.metrics["extra"] == 1.0
            assert kid.tags[TAG_STATE] == "COMPLETE"
        assert [k.run_id for k in kids if k.tags.get(TAG_BEST) == "true"] == [result.best_run_id]

    def test_pruned_trials_are_marked_and_their_reports_kept_as_history(self, ws: ll.Workspace):
        """With a MedianPruner, bad trials stop early: state PRUNED on the Optuna trial and the
        run, each ``report`` a point of the metric's history."""

        def objective(params: dict[str, Any], trial: Trial) -> float:
            for epoch in range(5):
                trial.report(params["x"] * (epoch + 1), epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            return params["x"] * 5

        result = tune(
            objective,
            {"x": ("uniform", 0.0, 1.0)},
            12,
            "minimize",
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
            sampler="random",
            seed=3,
            storage="memory",
        )
        pruned = [t for t in result.trials if t.state == "PRUNED"]
        assert pruned, "a median pruner over 12 random trials prunes some"
        run = ll.get_run(pruned[0].run_id)  # type: ignore[arg-type]
        assert run.tags[TAG_STATE] == "PRUNED" and run.info.status == "FINISHED"
        history = ll.get_metric_history(pruned[0].run_id, "objective")  # type: ignore[arg-type]
        assert [m.step for m in history] == list(range(len(history))) and history
        complete = next(t for t in result.trials if t.state == "COMPLETE")
        steps = [m.step for m in ll.get_metric_history(complete.run_id, "objective")]  # type: ignore[arg-type]
        assert steps == [0, 1, 2, 3, 4]  # the returned value equals the last report: no repeat

    def test_a_failing_trial_is_recorded_and_the_study_goes_on(self, ws: ll.Workspace):
        def objective(params: dict[str, Any]) -> float:
            if params["n"] == 3:
                raise ValueError("n=3 is cursed")
            return float(params["n"])

        result = tune(objective, {"n": ("int", 1, 4)}, 4, sampler="grid", storage="memory")
        states = {t.params["n"]: t.state for t in result.trials}
        assert states == {1: "COMPLETE", 2: "COMPLETE", 3: "FAIL", 4: "COMPLETE"}
        failed = next(t for t in result.trials if t.state == "FAIL")
        run = ll.get_run(failed.run_id)  # type: ignore[arg-type]
        assert run.info.status == "FAILED" and run.tags[TAG_STATE] == "FAIL"
        assert run.tags["loopline.error"] == "ValueError: n=3 is cursed"
        assert result.best_params == {"n": 4}

    def test_a_study_where_every_trial_fails_warns_and_has_no_best(self, ws: ll.Workspace):
        def broken(params: dict[str, Any]) -> float:
            raise RuntimeError("no data")

        with pytest.warns(UserWarning, match="no trial completed"):
            result = tune(broken, {"x": ("uniform", 0, 1)}, 2, storage="memory")
        assert result.best_params is None and result.best_run_id is None
        assert [t.state for t in result.trials] == ["FAIL", "FAIL"]

    def test_resume_continues_numbering_in_the_same_parent_run(self, ws: ll.Workspace):
        """The study persists under the workspace; resuming by name adds trials 3.. under the
        first session's run, and the best-trial tag moves to a better trial found later."""
        space = {"x": ("int", 0, 5)}
        first = tune(lambda p: p["x"], space, 3, study_name="res", seed=0)
        second = tune(lambda p: p["x"] + 10, space, 3, study_name="res", resume=True)
        assert second.parent_run_id == first.parent_run_id
        assert [t.number for t in second.trials] == [0, 1, 2, 3, 4, 5]
        kids = children(first.parent_run_id)
        assert [int(k.tags[TAG_TRIAL]) for k in kids] == list(range(6))
        assert second.best_run_id in {t.run_id for t in second.trials[3:]}
        assert [k.run_id for k in kids if k.tags.get(TAG_BEST)] == [second.best_run_id]
        assert ll.get_run(first.parent_run_id).metrics["best_objective"] == second.best_value
        assert ll.get_run(first.parent_run_id).info.status == "FINISHED"

    def test_a_postgresql_workspace_keeps_the_study_in_its_own_database(
        self, postgres_uri: str, tmp_path: Path
    ):
        """Optuna's RDB tables sit in the workspace's database, so every machine reaches it."""
        ll.use_workspace(Workspace(Settings.for_home(tmp_path / "pg", store_uri=postgres_uri)))
        first = tune(quadratic, {"x": ("uniform", 0, 4)}, 2, study_name="pg", seed=0)
        second = tune(quadratic, {"x": ("uniform", 0, 4)}, 2, study_name="pg", resume=True)
        assert second.parent_run_id == first.parent_run_id
        assert [t.number for t in second.trials] == [0, 1, 2, 3]
        assert optuna.get_all_study_names(postgres_uri) == ["pg"]

    def test_reusing_a_study_name_without_resume_is_refused(self, ws: ll.Workspace):
        tune(quadratic, {"x": ("uniform", 0, 1)}, 1, study_name="taken")
        with pytest.raises(ll.AlreadyExists, match="resume=True"):
            tune(quadratic, {"x": ("uniform", 0, 1)}, 1, study_name="taken")

    def test_a_resumed_study_keeps_its_definition(self, ws: ll.Workspace):
        tune(quadratic, {"x": ("uniform", 0, 1)}, 1, "minimize", study_name="def")
        with pytest.raises(ll.InvalidInput, match=r"space\.x"):
            tune(quadratic, {"x": ("uniform", 0, 2)}, 1, "minimize", study_name="def", resume=True)

    def test_threads_run_trials_concurrently(self, ws: ll.Workspace):
        """n_jobs=2 keeps two trials in flight: each waits at a two-party barrier, which only
        opens when both are running at once (run one by one, every trial would fail)."""
        barrier = threading.Barrier(2, timeout=10)

        def objective(params: dict[str, Any]) -> float:
            barrier.wait()
            return params["x"]

        result = tune(objective, {"x": ("uniform", 0, 1)}, 6, n_jobs=2, storage="memory")
        assert [t.state for t in result.trials] == ["COMPLETE"] * 6
        assert len({t.run_id for t in result.trials}) == 6

    def test_worker_processes_run_trials_and_track_into_the_workspace(self, ws: ll.Workspace):
        """executor="process": spawned workers open the driver's workspace and the study's
        journal (so pruning works there); a closure travels by value."""

        def objective(params: dict[str, Any], trial: Trial) -> float:
            assert trial.optuna is not None, "the worker reaches the study's storage"
            trial.report(params["x"], 0)
            return quadratic(params)

        result = tune(
            objective,
            {"x": ("uniform", 0, 4)},
            4,
            "minimize",
            executor="process",
            n_jobs=2,
            seed=0,
        )
        assert [t.state for t in result.trials] == ["COMPLETE"] * 4
        kids = children(result.parent_run_id)
        assert {k.run_id for k in kids} == {t.run_id for t in result.trials}
        assert all(len(ll.get_metric_history(k.run_id, "objective")) == 2 for k in kids)

    def test_inside_an_active_run_the_study_nests_under_it(self, ws: ll.Workspace):
        with ll.start_run(capture=False) as outer:
            result = tune(quadratic, {"x": ("uniform", 0, 1)}, 2, storage="memory")
            assert ll.active_run().run_id == outer.run_id  # type: ignore[union-attr]
        assert ll.get_run(result.parent_run_id).info.parent_run_id == outer.run_id

    def test_timeout_stops_launching_trials(self, ws: ll.Workspace):
        def slow(params: dict[str, Any]) -> float:
            time.sleep(0.1)
            return 0.0

        result = tune(slow, {"x": ("uniform", 0, 1)}, 100, timeout=0.25, storage="memory")
        assert 1 <= len(result.trials) <= 4

    def test_a_pipeline_step_can_tune(self, ws: ll.Workspace):
        """The step's worker process opens the pipeline's workspace and records the study."""
        piped = run(tuning_pipeline, {"n_trials": 3}, cache=False).raise_for_status()
        out = piped.output("tuning_step")
        assert ll.get_run(out["parent"]).tags[TAG_STUDY] == "in-step"
        assert len(children(out["parent"])) == 3 and 0 <= out["best"]["x"] <= 4


class TestSearchSpace:
    def test_plain_descriptions_become_optuna_distributions(self):
        space = build_search_space(
            {
                "lr": ("loguniform", 1e-4, 1e-1),
                "alpha": ("uniform", 0.0, 1.0),
                "q": ("float", 0.0, 1.0, {"step": 0.25}),
                "units": ("int", 8, 64, {"log": True}),
                "kernel": ("categorical", ["rbf", "linear"]),
                "raw": optuna.distributions.IntDistribution(1, 3),
            }
        )
        d = optuna.distributions
        assert space["lr"] == d.FloatDistribution(1e-4, 1e-1, log=True)
        assert space["q"] == d.FloatDistribution(0.0, 1.0, step=0.25)
        assert space["units"] == d.IntDistribution(8, 64, log=True)
        assert space["kernel"] == d.CategoricalDistribution(["rbf", "linear"])
        assert space["raw"] == d.IntDistribution(1, 3)

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            (("uniform", 1.0), r"takes \(low, high\)"),
            (("normal", 0, 1), "unknown kind 'normal'"),
            (("loguniform", 0.0, 1.0), "log"),
            (("uniform", 2.0, 1.0), "low"),
            (("int", 1.5, 4), "must be an integer"),
            (("int", 1, 4, {"stepp": 2}), "unknown options"),
            (("int", 1, 4, {"step": 2.5}), "must be an integer"),
            (("categorical", []), "non-empty list"),
            (("categorical", [object()]), "is not None, bool"),
            ((0.1, 0.2), "expected a tuple"),
        ],
    )
    def test_errors_name_the_key(self, spec: Any, message: str):
        with pytest.raises(ll.InvalidInput, match=message) as caught:
            build_search_space({"lr": spec})
        assert "search_space['lr']" in str(caught.value)

    def test_names_must_be_valid_param_keys(self):
        with pytest.raises(ll.InvalidInput, match="search_space key 'bad key!'"):
            build_search_space({"bad key!": ("uniform", 0, 1)})

    def test_grid_sampling_needs_finite_values(self, ws: ll.Workspace):
        with pytest.raises(ll.InvalidInput, match=r"search_space\['x'\]: grid"):
            tune(quadratic, {"x": ("uniform", 0, 1)}, 2, sampler="grid", storage="memory")

    def test_bad_settings_are_refused_before_any_trial(self, ws: ll.Workspace):
        space = {"x": ("uniform", 0, 1)}
        with pytest.raises(ll.InvalidInput, match="direction"):
            tune(quadratic, space, 1, "up")  # type: ignore[arg-type]
        with pytest.raises(ll.InvalidInput, match="executor"):
            tune(quadratic, space, 1, executor="dask")  # type: ignore[arg-type]
        with pytest.raises(ll.InvalidInput, match="study_name"):
            tune(quadratic, space, 1, study_name="it's")


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason='Ray is optional: pip install "loopline[ray]"')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


class TestRay:
    def test_trials_run_as_ray_tasks_and_track_into_the_workspace(
        self, ws: ll.Workspace, ray_local: Any
    ):
        """Each task opens the driver's workspace and records its trial; the driver tells."""

        def objective(params: dict[str, Any], trial: Trial) -> float:  # pickled by value
            trial.report(params["x"], 0)
            return (params["x"] - 1.0) ** 2

        # An in-memory study: tasks cannot reach it, so the driver replays their reports.
        result = tune(
            objective,
            {"x": ("uniform", 0, 2)},
            4,
            "minimize",
            executor="ray",
            n_jobs=2,
            seed=0,
            storage="memory",
        )
        assert len(result.trials) == 4 and all(t.state == "COMPLETE" for t in result.trials)
        kids = children(result.parent_run_id)
        assert len(kids) == 4
        for kid in kids:  # the report, then the returned value (not equal to the report)
            assert [m.step for m in ll.get_metric_history(kid.run_id, "objective")] == [0, 0]
        assert {k.run_id for k in kids} == {t.run_id for t in result.trials}
