"""The fluent tracking API (``ll.start_run``, ``ll.log_metric``, ...) on a real workspace."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import loopline as ll


@pytest.fixture
def ws(tmp_path: Path) -> ll.Workspace:
    return ll.use_workspace(tmp_path / "ws")  # type: ignore[return-value]


class TestRunLifecycle:
    def test_a_with_block_finishes_the_run_and_stores_everything(self, ws: ll.Workspace):
        ll.set_experiment("lifecycle")
        with ll.start_run(run_name="r1", tags={"team": "vision"}, capture=False) as run:
            ll.log_param("lr", 0.01)
            ll.log_params({"depth": 3, "opt": "adam"})
            ll.log_metric("loss", 0.5, step=0)
            ll.log_metrics({"loss": 0.25, "acc": 0.9}, step=1)
            ll.set_tag("stage", "dev")
            assert ll.active_run().run_id == run.run_id  # type: ignore[union-attr]
        stored = ll.get_run(run.run_id)
        assert stored.info.status == "FINISHED" and stored.info.end_time is not None
        assert stored.info.run_name == "r1"
        assert stored.params == {"lr": "0.01", "depth": "3", "opt": "adam"}
        assert stored.metrics == {"loss": 0.25, "acc": 0.9}
        assert stored.tags["team"] == "vision" and stored.tags["stage"] == "dev"
        assert ll.active_run() is None
        assert [m.value for m in ll.get_metric_history(run.run_id, "loss")] == [0.5, 0.25]

    def test_an_exception_marks_the_run_failed(self, ws: ll.Workspace):
        with pytest.raises(RuntimeError), ll.start_run(capture=False) as run:
            raise RuntimeError("boom")
        assert ll.get_run(run.run_id).info.status == "FAILED"

    def test_ctrl_c_marks_the_run_killed(self, ws: ll.Workspace):
        with pytest.raises(KeyboardInterrupt), ll.start_run(capture=False) as run:
            raise KeyboardInterrupt
        assert ll.get_run(run.run_id).info.status == "KILLED"

    def test_end_run_with_a_status(self, ws: ll.Workspace):
        run = ll.start_run(capture=False)
        ll.end_run("KILLED")
        assert ll.get_run(run.run_id).info.status == "KILLED"
        ll.end_run()  # no active run: a no-op

    def test_a_second_run_needs_nested_and_becomes_a_child(self, ws: ll.Workspace):
        with ll.start_run(capture=False) as parent:
            with pytest.raises(ll.Conflict, match="already active"):
                ll.start_run(capture=False)
            with ll.start_run(nested=True, capture=False) as child:
                ll.log_metric("x", 1.0)
            assert ll.active_run().run_id == parent.run_id  # type: ignore[union-attr]
        info = ll.get_run(child.run_id).info
        assert info.parent_run_id == parent.run_id
        assert ll.get_run(child.run_id).tags["mlflow.parentRunId"] == parent.run_id
        assert [str(e.source) for e in ll.upstream(f"run:{child.run_id}")] == [
            f"run:{parent.run_id}"
        ]

    def test_resuming_a_run_by_id_continues_logging(self, ws: ll.Workspace):
        with ll.start_run(capture=False) as run:
            ll.log_param("a", 1)
            ll.log_metric("m", 1.0, step=0)
        with ll.start_run(run_id=run.run_id):
            ll.log_metric("m", 2.0, step=1)
            with pytest.raises(ll.Conflict):
                ll.log_param("a", 2)  # known from the stored run, refused at the call
        stored = ll.get_run(run.run_id)
        assert stored.info.status == "FINISHED"
        assert stored.metrics["m"] == 2.0

    def test_logging_without_a_run_starts_one(self, ws: ll.Workspace):
        ll.log_metric("auto", 1.0)
        run = ll.active_run()
        assert run is not None
        ll.end_run()
        assert ll.get_run(run.run_id).metrics == {"auto": 1.0}

    def test_runs_go_to_the_current_experiment(self, ws: ll.Workspace):
        experiment = ll.set_experiment("mine")
        with ll.start_run(capture=False) as run:
            pass
        assert run.info.experiment_id == experiment.experiment_id
        assert ll.last_active_run().run_id == run.run_id  # type: ignore[union-attr]


class TestValidationAtTheCallSite:
    def test_a_non_numeric_metric_raises_immediately(self, ws: ll.Workspace):
        with ll.start_run(capture=False), pytest.raises(ll.InvalidInput, match="not a number"):
            ll.log_metric("acc", "high")  # type: ignore[arg-type]

    def test_a_too_long_param_raises_immediately(self, ws: ll.Workspace):
        with ll.start_run(capture=False), pytest.raises(ll.InvalidInput, match="6000"):
            ll.log_param("big", "x" * 6001)

    def test_changing_a_param_raises_immediately_and_keeps_the_first(self, ws: ll.Workspace):
        with ll.start_run(capture=False) as run:
            ll.log_param("lr", 0.1)
            with pytest.raises(ll.Conflict, match="'lr'"):
                ll.log_param("lr", 0.2)
            ll.log_param("lr", 0.1)  # the same value again is fine
        assert ll.get_run(run.run_id).params == {"lr": "0.1"}

    @pytest.mark.parametrize("key", ["", "bad key!", "../up", "a" * 251])
    def test_bad_keys_are_refused(self, ws: ll.Workspace, key: str):
        with ll.start_run(capture=False), pytest.raises(ll.InvalidInput):
            ll.log_metric(key, 1.0)

    def test_nan_and_numpy_values_are_numbers(self, ws: ll.Workspace):
        import numpy as np

        with ll.start_run(capture=False) as run:
            ll.log_metric("nan", float("nan"))
            ll.log_metric("np", np.float32(0.5), step=np.int64(3))  # type: ignore[arg-type]
        stored = ll.get_run(run.run_id).metrics
        assert math.isnan(stored["nan"]) and stored["np"] == 0.5


class TestArtifacts:
    def test_files_dirs_text_dict_table_and_figures(self, ws: ll.Workspace, tmp_path: Path):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import pandas as pd

        (tmp_path / "d" / "sub").mkdir(parents=True)
        (tmp_path / "d" / "sub" / "x.txt").write_text("x")
        (tmp_path / "one.txt").write_text("one")
        with ll.start_run(capture=False) as run:
            assert ll.log_artifact(tmp_path / "one.txt", "files") == "files/one.txt"
            assert ll.log_artifacts(tmp_path / "d", "tree") == ["tree/sub/x.txt"]
            ll.log_text("hello", "notes/hello.txt")
            ll.log_dict({"a": 1}, "config.json")
            ll.log_table(pd.DataFrame({"a": [1, 2]}), "tables/t.parquet")
            fig = plt.figure()
            plt.plot([1, 2, 3])
            ll.log_figure(fig, "plots/curve.png")
        tracking = ws.tracking
        paths = [r.path for r in tracking.artifact_files(run.run_id)]
        assert paths == sorted(
            [
                "config.json",
                "files/one.txt",
                "notes/hello.txt",
                "plots/curve.png",
                "tables/t.parquet",
                "tree/sub/x.txt",
            ]
        )
        assert tracking.open_artifact(run.run_id, "notes/hello.txt").read() == b"hello"
        out = tracking.download_artifacts(run.run_id, "tables", tmp_path / "dl")
        assert pd.read_parquet(out / "t.parquet")["a"].tolist() == [1, 2]
        png = tracking.open_artifact(run.run_id, "plots/curve.png").read()
        assert png.startswith(b"\x89PNG")

    def test_traversal_in_artifact_paths_is_refused(self, ws: ll.Workspace):
        with ll.start_run(capture=False):
            for evil in ("../escape.txt", "/etc/passwd", "a/../../b.txt", "a\x00b"):
                with pytest.raises(ll.InvalidInput):
                    ll.log_text("x", evil)

    def test_log_table_insists_on_parquet(self, ws: ll.Workspace):
        with ll.start_run(capture=False), pytest.raises(ll.InvalidInput, match="parquet"):
            ll.log_table({"a": [1]}, "table.csv")


class TestCapture:
    def test_environment_and_requirements_are_recorded_by_default(self, ws: ll.Workspace):
        with ll.start_run() as run:
            pass
        stored = ll.get_run(run.run_id)
        assert stored.tags["loopline.python"].count(".") == 2
        assert stored.tags["mlflow.source.type"] == "LOCAL"
        assert "loopline.platform" in stored.tags and "loopline.cpu" in stored.tags
        requirements = ws.tracking.open_artifact(run.run_id, "loopline/requirements.txt").read()
        assert b"sqlalchemy==" in requirements.lower()

    def test_requirements_match_the_installed_distributions_and_follow_an_install(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """The header-only reading gives what the full metadata parser gives, and the
        per-process memory notices a distribution appearing on the import path."""
        import importlib.metadata
        import os

        from loopline.tracking.capture import requirements

        expected = {
            f"{d.metadata['Name']}=={d.version}"
            for d in importlib.metadata.distributions()
            if d.metadata.get("Name")
        }
        before = requirements()
        assert set(before.splitlines()) == expected
        site = tmp_path / "site"
        site.mkdir()
        monkeypatch.syspath_prepend(str(site))
        assert "zz-fresh-dist==1.2.3" not in requirements()
        info = site / "zz_fresh_dist-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: zz-fresh-dist\nVersion: 1.2.3\n\nName: not-this\n"
        )
        stamp = os.stat(site).st_mtime_ns + 1_000_000
        os.utime(site, ns=(stamp, stamp))  # an install in the same clock tick still counts
        after = requirements().splitlines()
        assert "zz-fresh-dist==1.2.3" in after and "not-this" not in "".join(after)

    def test_git_commit_branch_and_diff_are_captured(
        self, ws: ll.Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ):
        import subprocess

        repo = tmp_path / "repo"
        repo.mkdir()
        git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
        subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
        (repo / "train.py").write_text("print('v1')\n")
        subprocess.run([*git, "add", "."], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", "v1"], cwd=repo, check=True)
        (repo / "train.py").write_text("print('v2')\n")
        monkeypatch.chdir(repo)
        import sys

        monkeypatch.setattr(
            sys.modules["__main__"], "__file__", str(repo / "train.py"), raising=False
        )
        with ll.start_run() as run:
            pass
        tags = ll.get_run(run.run_id).tags
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        assert tags["mlflow.source.git.commit"] == head
        assert tags["mlflow.source.git.branch"] == "main"
        assert tags["loopline.git.dirty"] == "true"
        diff = ws.tracking.open_artifact(run.run_id, "loopline/git.diff").read().decode()
        assert "+print('v2')" in diff
        script = ws.tracking.open_artifact(run.run_id, "loopline/train.py").read()
        assert script == b"print('v2')\n"

    def test_capture_can_be_turned_off(self, ws: ll.Workspace):
        with ll.start_run(capture=False) as run:
            pass
        assert "loopline.python" not in ll.get_run(run.run_id).tags
        assert ws.tracking.artifact_files(run.run_id) == []

    def test_seed_everything_seeds_and_records(self, ws: ll.Workspace):
        import random

        import numpy as np

        with ll.start_run(capture=False) as run:
            ll.seed_everything(42)
            a = (random.random(), np.random.rand())
            ll.seed_everything(42)
            b = (random.random(), np.random.rand())
        assert a == b
        assert ll.get_run(run.run_id).tags["loopline.seed"] == "42"


class TestSearch:
    def test_search_runs_returns_mlflow_columns_filtered_in_sql(self, ws: ll.Workspace):
        ll.set_experiment("search")
        for i, lr in enumerate(["0.1", "0.01", "0.001"]):
            with ll.start_run(run_name=f"r{i}", capture=False):
                ll.log_param("lr", lr)
                ll.log_metric("acc", 0.5 + i * 0.2)
                ll.set_tag("team", "vision" if i else "nlp")
        frame = ll.search_runs(
            filter_string="metrics.acc > 0.6 and tags.team = 'vision'",
            order_by=["metrics.acc DESC"],
        )
        assert list(frame["params.lr"]) == ["0.001", "0.01"]
        for column in (
            "run_id",
            "experiment_id",
            "status",
            "start_time",
            "end_time",
            "metrics.acc",
            "params.lr",
            "tags.team",
        ):
            assert column in frame.columns
        assert str(frame["start_time"].dtype).startswith("datetime64")
        runs = ll.search_runs(filter_string="params.lr IN ('0.1')", output_format="list")
        assert [r.info.run_name for r in runs] == ["r0"]

    def test_a_malformed_filter_names_the_offset(self, ws: ll.Workspace):
        with pytest.raises(ll.InvalidInput, match="offset"):
            ll.search_runs(filter_string="metrics.acc >> 1")

    def test_search_sees_values_just_logged(self, ws: ll.Workspace):
        with ll.start_run(capture=False):
            ll.log_metric("fresh", 1.0)
            frame = ll.search_runs(filter_string="metrics.fresh = 1")
        assert len(frame) == 1
