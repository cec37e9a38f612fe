"""The tracking commands of the ``loopline`` CLI, against runs logged through the Python API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import run

SEED = """
import sys, loopline as ll
ll.use_workspace(".")
ll.set_experiment("cli")
ids = []
for lr, acc in (("0.1", 0.7), ("0.01", 0.9)):
    with ll.start_run(run_name=f"lr-{lr}", capture=False) as r:
        ll.log_param("lr", lr)
        ll.log_param("depth", "3")
        ll.log_metric("acc", acc)
        ll.log_text("weights", "model/weights.txt")
    ids.append(r.run_id)
print(" ".join(ids))
"""


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", SEED], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return tmp_path, out.stdout.split()


class TestExperiments:
    def test_create_list_rename_delete_restore(self, tmp_path: Path):
        created = run("experiments", "create", "alpha", cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        exp_id = created.stdout.strip()
        assert "alpha" in run("experiments", "list", cwd=tmp_path).stdout
        assert run("experiments", "rename", exp_id, "beta", cwd=tmp_path).returncode == 0
        run("experiments", "delete", exp_id, cwd=tmp_path)
        active = run("experiments", "list", cwd=tmp_path).stdout
        assert "beta" not in active and "Default" in active
        deleted = run("experiments", "list", "--view", "DELETED_ONLY", cwd=tmp_path).stdout
        assert "beta" in deleted
        run("experiments", "restore", exp_id, cwd=tmp_path)
        assert "beta" in run("experiments", "list", cwd=tmp_path).stdout

    def test_a_duplicate_name_is_one_clear_error(self, tmp_path: Path):
        run("experiments", "create", "dup", cwd=tmp_path)
        again = run("experiments", "create", "dup", cwd=tmp_path)
        assert again.returncode == 4
        assert "Error: experiment 'dup' already exists" in again.stderr


class TestRuns:
    def test_list_filters_in_sql_and_orders(self, seeded):
        cwd, (slow, fast) = seeded
        result = run("runs", "list", "-e", "cli", "--filter", "metrics.acc > 0.8", cwd=cwd)
        assert result.returncode == 0, result.stderr
        assert fast in result.stdout and slow not in result.stdout
        ordered = run("runs", "list", "-e", "cli", "--order-by", "metrics.acc ASC", cwd=cwd)
        assert ordered.stdout.index(slow) < ordered.stdout.index(fast)

    def test_a_bad_filter_names_the_offset(self, seeded):
        cwd, _ = seeded
        result = run("runs", "list", "--filter", "metrics.acc >> 1", cwd=cwd)
        assert result.returncode == 2
        assert "offset" in result.stderr

    def test_show_prints_params_metrics_tags_and_artifacts(self, seeded):
        cwd, (_, fast) = seeded
        out = run("runs", "show", fast, cwd=cwd).stdout
        for expected in (
            "lr-0.01",
            "FINISHED",
            "lr",
            "0.01",
            "acc",
            "0.9",
            "model/weights.txt",
            "mlflow.runName",
        ):
            assert expected in out

    def test_compare_puts_runs_side_by_side(self, seeded):
        cwd, (slow, fast) = seeded
        out = run("runs", "compare", slow, fast, cwd=cwd).stdout
        row = next(line for line in out.splitlines() if "params.lr" in line)
        assert "0.1" in row and "0.01" in row
        assert any(
            "metrics.acc" in line and "0.7" in line and "0.9" in line for line in out.splitlines()
        )

    def test_delete_restore_and_gc_purge(self, seeded):
        cwd, (slow, fast) = seeded
        assert run("runs", "delete", slow, cwd=cwd).returncode == 0
        assert slow not in run("runs", "list", cwd=cwd).stdout
        assert slow in run("runs", "list", "--view", "DELETED_ONLY", cwd=cwd).stdout
        run("runs", "restore", slow, cwd=cwd)
        assert slow in run("runs", "list", cwd=cwd).stdout
        run("runs", "delete", slow, cwd=cwd)
        dry = run("gc", "--dry-run", cwd=cwd)
        assert "would purge 1 deleted runs" in dry.stdout
        done = run("gc", cwd=cwd)
        assert "purged 1 deleted runs" in done.stdout
        gone = run("runs", "show", slow, cwd=cwd)
        assert gone.returncode == 3 and "not found" in gone.stderr
        assert run("runs", "show", fast, cwd=cwd).returncode == 0

    def test_an_unknown_run_is_not_found(self, tmp_path: Path):
        result = run("runs", "show", "0" * 32, cwd=tmp_path)
        assert result.returncode == 3
        assert "not found" in result.stderr


class TestArtifacts:
    def test_list_and_download(self, seeded):
        cwd, (_, fast) = seeded
        listed = run("artifacts", "list", fast, cwd=cwd).stdout
        assert "model/" in listed
        assert "model/weights.txt" in run("artifacts", "list", fast, "model", cwd=cwd).stdout
        result = run("artifacts", "download", fast, "--path", "model", "--dest", "out", cwd=cwd)
        assert result.returncode == 0, result.stderr
        assert (cwd / "out" / "model" / "weights.txt").read_text() == "weights"

    def test_events_record_run_activity(self, seeded):
        cwd, (_, fast) = seeded
        lines = run("events", "list", "--object", f"run:{fast}", "--json", cwd=cwd).stdout
        actions = [json.loads(line)["action"] for line in lines.splitlines()]
        assert actions == ["run.ended", "run.created"]
