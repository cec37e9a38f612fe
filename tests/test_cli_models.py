"""``loopline models`` against a registry filled through the Python API: real processes for
output and exit codes, Typer's CliRunner where a prompt needs an answer."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import loopline as ll
from loopline.cli.main import app
from loopline.config import Settings
from loopline.workspace import Workspace
from tests.test_cli import run

X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
Y = np.array([0, 1, 0, 1])


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``fraud`` v1 and v2 (alias champion -> 1, challenger -> 2; v1's run trained on
    ``dataset_version:tx@1``) and ``churn`` v1, logged from one run each. Read-only: tests that
    change the registry use :func:`fresh`."""
    home = tmp_path_factory.mktemp("models") / "ws"
    return home, _seed(home)


@pytest.fixture
def fresh(tmp_path: Path) -> tuple[Path, str]:
    home = tmp_path / "ws"
    return home, _seed(home)


def _seed(home: Path) -> str:
    ws = Workspace(Settings.for_home(home, actor="tester"))
    try:
        with ll.use_workspace(ws):
            model = LogisticRegression().fit(X, Y)
            infos = []
            for _ in range(3):
                with ll.start_run(capture=False):
                    infos.append(ll.models.log_model(model, "model", input_example=X[:2]))
            ws.lineage.link(("dataset_version", "tx@1"), ("run", infos[0].run_id), "trained_on")
            ll.models.register(infos[0].model_uri, "fraud")
            ll.models.register(infos[1].model_uri, "fraud")
            ll.models.register(infos[2].model_uri, "churn")
            ll.models.set_alias("fraud", "champion", 1)
            ll.models.set_alias("fraud", "challenger", 2)
            ws.registry.update_registered_model("fraud", "card fraud scorer")
    finally:
        ll.use_workspace(None)
        ws.close()
    return infos[0].run_id


def models(home: Path, *args: str):
    return run("--home", str(home), "models", *args, cwd=home.parent)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class TestList:
    def test_the_table_names_each_model_its_latest_version_and_aliases(self, seeded):
        home, _ = seeded
        result = models(home, "list")
        assert result.returncode == 0, result.stderr
        fraud = next(line for line in result.stdout.splitlines() if "fraud" in line)
        for expected in ("fraud", " 2 ", "challenger->2, champion->1", "card fraud scorer"):
            assert expected in fraud
        assert "churn" in result.stdout
        assert "2 registered model(s)" in result.stdout

    def test_filter_and_json(self, seeded):
        home, _ = seeded
        result = models(home, "list", "--filter", "name LIKE 'fr%'", "--json")
        assert result.returncode == 0, result.stderr
        (row,) = json_lines(result.stdout)
        assert row["name"] == "fraud"
        assert row["latest_version"] == 2
        assert row["aliases"] == {"champion": 1, "challenger": 2}
        assert row["description"] == "card fraud scorer"
        assert isinstance(row["last_updated_timestamp"], int)

    def test_a_bad_filter_is_invalid_input(self, seeded):
        home, _ = seeded
        result = models(home, "list", "--filter", "colour = 'red'")
        assert result.returncode == 2
        assert result.stderr.startswith("Error: ")


class TestShowAndVersions:
    def test_show_prints_the_model_and_its_versions(self, seeded):
        home, first_run = seeded
        result = models(home, "show", "fraud")
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "card fraud scorer" in out
        assert "challenger->2, champion->1" in out
        assert f"runs:/{first_run}/model" in out and first_run in out
        assert out.index("challenger") < out.index(first_run)  # header, then newest version first

    def test_show_json_nests_the_versions(self, seeded):
        home, first_run = seeded
        (row,) = json_lines(models(home, "show", "fraud", "--json").stdout)
        assert row["name"] == "fraud"
        assert [v["version"] for v in row["versions"]] == [2, 1]
        v1 = row["versions"][1]
        assert (v1["aliases"], v1["run_id"], v1["source"]) == (
            ["champion"],
            first_run,
            f"runs:/{first_run}/model",
        )

    def test_versions_lists_only_that_models_versions(self, seeded):
        home, _ = seeded
        rows = json_lines(models(home, "versions", "fraud", "--json").stdout)
        assert [(r["name"], r["version"], r["aliases"]) for r in rows] == [
            ("fraud", 2, ["challenger"]),
            ("fraud", 1, ["champion"]),
        ]
        churn = json_lines(models(home, "versions", "churn", "--json").stdout)
        assert [(r["name"], r["version"]) for r in churn] == [("churn", 1)]
        table = models(home, "versions", "fraud").stdout
        assert "challenger" in table and "champion" in table and "None" in table  # stage

    @pytest.mark.parametrize("command", ["show", "versions", "delete"])
    def test_an_unknown_model_is_one_not_found_line(self, seeded, command):
        home, _ = seeded
        result = models(home, command, "nope", *(["--yes"] if command == "delete" else []))
        assert result.returncode == 3
        assert result.stderr.strip() == "Error: registered model 'nope' not found"


class TestAlias:
    def test_set_moves_and_delete_removes(self, fresh):
        home, _ = fresh
        moved = models(home, "alias", "fraud", "champion", "2")
        assert moved.returncode == 0, moved.stderr
        assert "fraud@champion -> version 2" in moved.stdout
        (row,) = json_lines(models(home, "list", "--filter", "name = 'fraud'", "--json").stdout)
        assert row["aliases"] == {"champion": 2, "challenger": 2}
        removed = models(home, "alias", "fraud", "challenger", "--delete")
        assert removed.returncode == 0, removed.stderr
        (row,) = json_lines(models(home, "list", "--filter", "name = 'fraud'", "--json").stdout)
        assert row["aliases"] == {"champion": 2}

    def test_errors(self, fresh):
        home, _ = fresh
        no_version = models(home, "alias", "fraud", "champion")
        assert no_version.returncode == 2
        assert "--delete" in no_version.stderr
        assert models(home, "alias", "fraud", "champion", "1", "--delete").returncode == 2
        missing = models(home, "alias", "fraud", "champion", "9")
        assert missing.returncode == 3
        assert "version 9" in missing.stderr


class TestDownloadAndLineage:
    def test_download_writes_a_verified_model_and_prints_the_directory(self, seeded, tmp_path):
        home, _ = seeded
        result = models(home, "download", "models:/fraud@champion", str(tmp_path / "out"))
        assert result.returncode == 0, result.stderr
        out = Path(result.stdout.strip())
        assert out.is_dir()
        assert {"MLmodel", "model.pkl"} <= {p.name for p in out.iterdir()}

    def test_lineage_prints_edges_indented_by_depth(self, seeded):
        home, first_run = seeded
        result = models(home, "lineage", "fraud/1")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "model_version:fraud/1 (version label 1.0.0)",
            f"run:{first_run} --registered_as--> model_version:fraud/1",
            f"  dataset_version:tx@1 --trained_on--> run:{first_run}",
            "dataset: dataset_version:tx@1",
        ]

    def test_lineage_json_is_one_edge_per_line(self, seeded):
        home, first_run = seeded
        rows = json_lines(models(home, "lineage", "fraud/1", "--json").stdout)
        assert rows == [
            {
                "source": f"run:{first_run}",
                "target": "model_version:fraud/1",
                "relation": "registered_as",
                "depth": 1,
            },
            {
                "source": "dataset_version:tx@1",
                "target": f"run:{first_run}",
                "relation": "trained_on",
                "depth": 2,
            },
            {
                "provenance": {
                    "run_id": first_run,
                    "experiment_id": "0",
                    "run_name": rows[-1]["provenance"]["run_name"],
                    "git": {},
                    "environment": {},
                    "metrics": {},
                    "params": {},
                    "datasets": [{"ref": "dataset_version:tx@1", "name": "tx", "version": "1"}],
                },
                "version_label": "1.0.0",
            },
        ]

    def test_lineage_errors(self, seeded):
        home, _ = seeded
        assert models(home, "lineage", "fraud").returncode == 2
        unknown = models(home, "lineage", "fraud/7")
        assert unknown.returncode == 3
        assert "model version 7 of registered model 'fraud' not found" in unknown.stderr


class TestDelete:
    def test_refusing_the_prompt_deletes_nothing(self, fresh):
        home, _ = fresh
        result = CliRunner().invoke(app, ["--home", str(home), "models", "delete", "fraud"], "n\n")
        assert result.exit_code == 1
        assert "Delete registered model 'fraud' with 2 version(s)?" in result.output
        assert "Aborted" in result.output
        assert "fraud" in models(home, "list").stdout

    def test_accepting_the_prompt_deletes_one_version(self, fresh):
        home, _ = fresh
        args = ["--home", str(home), "models", "delete", "fraud", "--version", "2"]
        result = CliRunner().invoke(app, args, "y\n")
        assert result.exit_code == 0, result.output
        assert "deleted version 2 of registered model 'fraud'" in result.output
        rows = json_lines(models(home, "versions", "fraud", "--json").stdout)
        assert [r["version"] for r in rows] == [1]

    def test_yes_deletes_the_whole_model(self, fresh):
        home, _ = fresh
        result = models(home, "delete", "fraud", "--yes")
        assert result.returncode == 0, result.stderr
        listed = models(home, "list").stdout
        assert "fraud" not in listed and "churn" in listed
        assert models(home, "show", "fraud").returncode == 3


def test_every_command_has_help_with_an_example(tmp_path):
    result = run("models", "--help", cwd=tmp_path)
    commands = ("list", "show", "versions", "alias", "download", "lineage", "delete")
    assert all(c in result.stdout for c in commands)
    for command in commands:
        helped = run("models", command, "--help", cwd=tmp_path)
        assert helped.returncode == 0
        assert f"Example: loopline models {command}" in helped.stdout


class TestPromotion:
    def test_promote_rollback_and_history_record_who_when_why(self, fresh):
        home, _ = fresh
        promoted = models(home, "promote", "fraud", "2", "--alias", "champion", "--reason", "AUC")
        first = models(home, "promote", "fraud", "1", "--alias", "production")
        second = models(home, "promote", "fraud", "2", "--alias", "production")
        back = models(home, "rollback", "fraud", "--alias", "production", "--reason", "drift")
        listed = models(home, "history", "fraud", "--alias", "production", "--json")
        table = models(home, "history", "fraud")
        assert [r.returncode for r in (promoted, first, second, back, listed, table)] == [0] * 6
        assert promoted.stdout.strip() == "fraud@champion: version 1 -> version 2"
        assert first.stdout.strip() == "fraud@production: unset -> version 1"
        assert back.stdout.strip() == "fraud@production: version 2 -> version 1"
        moves = [
            (m["previous_version"], m["version"], m["reason"], m["actor"])
            for m in json_lines(listed.stdout)
        ]
        me = getpass.getuser()  # the CLI's actor: the operating-system user
        assert moves == [(None, 1, "", me), (1, 2, "", me), (2, 1, "drift", me)]
        assert "AUC" in table.stdout and "champion" in table.stdout

    def test_errors_name_the_problem(self, fresh):
        home, _ = fresh
        unknown = models(home, "promote", "nope", "1", "--alias", "production")
        nothing = models(home, "rollback", "fraud", "--alias", "production")
        missing = models(home, "promote", "fraud", "9", "--alias", "production")
        assert (unknown.returncode, nothing.returncode, missing.returncode) == (3, 2, 3)
        assert "registered model 'nope' not found" in unknown.stderr
        assert "nothing to roll back" in nothing.stderr


class TestApprovals:
    def test_a_policy_turns_promote_into_a_request_that_another_user_approves(self, fresh):
        home, _ = fresh
        policy = models(
            home,
            "policy",
            "set",
            "fraud",
            "--alias",
            "production",
            "--approvals",
            "1",
            "--check",
            "auc>=0.5",
        )
        assert policy.returncode == 0, policy.stderr
        refused = models(home, "promote", "fraud", "1", "--alias", "production")
        assert refused.returncode == 6
        assert "auc >= 0.5 failed (auc was not logged" in refused.stderr
        models(home, "policy", "set", "fraud", "--alias", "production", "--approvals", "1")
        requested = models(home, "promote", "fraud", "1", "--alias", "production")
        assert requested.returncode == 0, requested.stderr
        assert requested.stdout.startswith("promotion request 1: fraud@production -> version 1")
        own = models(home, "approve", "1")
        assert own.returncode == 6 and "cannot approve" in own.stderr
        direct = models(home, "alias", "fraud", "production", "1")
        assert direct.returncode == 6 and "governed by a promotion policy" in direct.stderr
        pending = json_lines(
            models(home, "requests", "fraud", "--state", "pending", "--json").stdout
        )
        assert [(r["request_id"], r["state"]) for r in pending] == [(1, "PENDING")]
        approved = run(
            "--home",
            str(home),
            "models",
            "approve",
            "1",
            "--comment",
            "ok",
            cwd=home.parent,
            env={"LOOPLINE_ACTOR": "reviewer"},
        )
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.strip() == (
            "promotion request 1 (fraud@production -> version 1): APPLIED"
        )
        shown = models(home, "show", "fraud", "--json")
        assert json.loads(shown.stdout)["aliases"]["production"] == 1
        table = models(home, "requests")
        assert "APPLIED" in table.stdout and "+reviewer" in table.stdout

    def test_reject_and_policy_show_delete(self, fresh):
        home, _ = fresh
        models(home, "policy", "set", "fraud", "--alias", "production", "--role", "admin")
        shown = json_lines(models(home, "policy", "show", "fraud").stdout)
        assert shown == [
            {
                "alias": "production",
                "allow_self_approval": False,
                "approvals": 1,
                "approver_role": "admin",
                "checks": [],
                "model": "fraud",
            }
        ]
        models(home, "promote", "fraud", "2", "--alias", "production")
        rejected = models(home, "reject", "1", "--comment", "not yet")
        assert rejected.stdout.strip().endswith("REJECTED")
        again = models(home, "approve", "1")
        assert again.returncode == 5 and "no longer pending" in again.stderr
        assert models(home, "policy", "delete", "fraud", "--alias", "production").returncode == 0
        free = models(home, "promote", "fraud", "2", "--alias", "production")
        assert free.stdout.strip() == "fraud@production: unset -> version 2"
        bad = models(home, "policy", "set", "fraud", "--alias", "x", "--check", "auc>high")
        assert bad.returncode == 2 and "--check 'auc>high'" in bad.stderr

    def test_a_policy_in_loopline_toml_governs_every_model(self, fresh):
        home, _ = fresh
        (home / "loopline.toml").write_text(
            '[[promotion_policies]]\nmodel = "*"\nalias = "production"\napprovals = 2\n'
        )
        requested = models(home, "promote", "churn", "1", "--alias", "production")
        assert "needs 2 approval(s) by editor" in requested.stdout, requested.stderr
        shown = json_lines(models(home, "policy", "show", "churn").stdout)
        assert [(p["model"], p["approvals"]) for p in shown] == [("*", 2)]
        (home / "loopline.toml").write_text(
            '[[promotion_policies]]\nalias = "production"\napprovals = "two"\n'
        )
        broken = models(home, "policy", "show", "churn")
        assert broken.returncode == 2
        assert "promotion_policies.0.approvals" in broken.stderr
