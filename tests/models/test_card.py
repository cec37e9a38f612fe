"""Model cards: every section shows what the registry knows about one version, the
user-written YAML is checked strictly, and HTML escapes whatever users typed."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import loopline as ll
from loopline.cli.main import app
from loopline.config import Settings
from loopline.errors import InvalidInput, NotFound
from loopline.events import EventLog
from loopline.models.card import (
    card,
    collect_card,
    parse_card_yaml,
    render_html,
    render_markdown,
)
from loopline.workspace import Workspace
from tests.test_cli import run

X = pd.DataFrame({"amount": [1.0, 5.0, 2.0, 9.0], "age|days": [3, 40, 7, 90]})
Y = [0, 1, 0, 1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
CARD = {
    "intended_use": "Score card payments for fraud review.",
    "out_of_scope_use": ["Credit decisions", "Anything about people under 18"],
    "limitations": ["Trained on EU transactions only", "Weak on amounts over 10k"],
    "ethical_considerations": "Reviewed by the risk board.",
    "owners": ["risk-team@example.com"],
    "references": ["https://example.com/fraud-design", "javascript:alert(1)"],
    "extra": {"review_ticket": "RISK-42", "regions": ["EU", "UK"]},
}
MODEL_DIR_CARD = "intended_use: Written next to the weights.\nlimitations: Only a demo.\n"


@dataclasses.dataclass(frozen=True)
class Seeded:
    home: Path
    run_id: str


def _seed(home: Path) -> Seeded:
    """``fraud`` v1 (a run with params, metrics, a git commit and a dataset; champion moved
    from v1 to v2), ``fraud`` v2 (its model directory ships ``card.yaml``), and ``external`` v1
    with no run and files outside the workspace."""
    ws = Workspace(Settings.for_home(home, actor="tester"))
    try:
        with ll.use_workspace(ws):
            model = LogisticRegression().fit(X, Y)
            with ll.start_run(capture=False, run_name="train-fraud") as first:
                ll.log_params({"C": 0.5, "solver": "lbfgs|liblinear"})
                ll.log_metrics({"auc": 0.9375, "f1": 0.8125})
                ll.set_tags({"mlflow.source.git.commit": COMMIT, "loopline.python": "3.11.9"})
                info = ll.models.log_model(model, "model", input_example=X)
            ws.lineage.link(("dataset_version", "transactions@7"), ("run", first.run_id), "read")
            ll.models.register(info.model_uri, "fraud")
            with ll.start_run(capture=False):
                second = ll.models.log_model(model, "model", input_example=X)
                ll.log_text(MODEL_DIR_CARD, "model/card.yaml")
            ll.models.register(second.model_uri, "fraud")
            ll.models.promote("fraud", 1, "champion", reason="first release")
            ll.models.promote("fraud", 2, "champion", reason="retrained")
            ll.models.set_policy("fraud", "production", approvals=1)
            request = ll.models.promote("fraud", 1, "production", reason="ship it")
            reviewer = ws.registry.acting_as("rita", EventLog(ws.store, "rita"))
            reviewer.approve(request.request_id, comment="holdout AUC confirmed")
            ws.registry.update_registered_model("fraud", "Card fraud scorer.")
            ws.registry.create_registered_model("external")
            ws.registry.create_model_version("external", "s3://bucket/external-model")
    finally:
        ll.use_workspace(None)
        ws.close()
    return Seeded(home, first.run_id)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Read-only: tests that change the registry make their own workspace."""
    return _seed(tmp_path_factory.mktemp("card") / "ws")


@pytest.fixture
def ws(seeded: Seeded) -> Iterator[Workspace]:
    workspace = Workspace(Settings.for_home(seeded.home, actor="tester"))
    yield workspace
    workspace.close()


def _section(markdown: str, title: str) -> str:
    """The text of one ``## title`` section, up to the next ``##`` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |^---$)", markdown, re.M | re.S)
    assert match, f"no section {title!r} in:\n{markdown}"
    return match.group(1)


class TestMarkdown:
    def test_the_header_names_the_version_its_aliases_creator_and_description(self, ws):
        text = card("fraud/2", workspace=ws, card_yaml=CARD)
        assert text.startswith("# Model card: fraud version 2")
        assert "| Aliases | champion |" in text
        assert "| Created by | tester |" in text
        assert "Card fraud scorer." in text

    def test_user_sections_come_from_the_yaml(self, ws):
        text = card("fraud/1", workspace=ws, card_yaml=CARD)
        assert _section(text, "Intended use").strip() == "Score card payments for fraud review."
        assert _section(text, "Limitations").strip().splitlines() == [
            "- Trained on EU transactions only",
            "- Weak on amounts over 10k",
        ]
        assert "- Credit decisions" in _section(text, "Out-of-scope use")
        assert "Reviewed by the risk board." in _section(text, "Ethical considerations")
        assert "risk-team@example.com" in _section(text, "Owners")
        extra = _section(text, "Additional information")
        assert "| review_ticket | RISK-42 |" in extra and "| regions | EU, UK |" in extra

    def test_undocumented_core_sections_say_so_and_optional_ones_are_left_out(self, ws):
        text = card("fraud/1", workspace=ws, card_yaml={"intended_use": "x"})
        assert _section(text, "Limitations").strip() == "_Not documented._"
        assert _section(text, "Ethical considerations").strip() == "_Not documented._"
        assert "## Out-of-scope use" not in text and "## Owners" not in text

    def test_metrics_params_run_and_git_commit_come_from_the_run(self, ws, seeded):
        text = card("fraud/1", workspace=ws)
        metrics = _section(text, "Metrics")
        assert "| auc | 0.9375 |" in metrics and "| f1 | 0.8125 |" in metrics
        params = _section(text, "Parameters")
        assert "| C | 0.5 |" in params
        assert "| solver | lbfgs\\|liblinear |" in params  # a pipe would split the cell
        environment = _section(text, "Environment")
        assert f"| Git commit | {COMMIT} |" in environment
        assert f"| Run | {seeded.run_id} (train-fraud) |" in environment
        assert "| Python | 3.11.9 |" in environment

    def test_model_details_list_flavors_signature_columns_and_requirements(self, ws):
        details = _section(card("fraud/1", workspace=ws), "Model details")
        assert "| sklearn |" in details and "| python_function |" in details
        assert "| amount | double | yes |" in details
        assert "| age\\|days | long | yes |" in details
        assert re.search(r"- `scikit-learn==[\d.]+`", details)

    def test_training_data_and_lineage_follow_the_graph_upstream(self, ws, seeded):
        text = card("fraud/1", workspace=ws)
        assert "| transactions | 7 |" in _section(text, "Training data")
        lineage = _section(text, "Lineage")
        assert f"| 1 | run:{seeded.run_id} | registered_as | model_version:fraud/1 |" in lineage
        assert f"| 2 | dataset_version:transactions@7 | read | run:{seeded.run_id} |" in lineage

    def test_alias_history_shows_moves_onto_and_off_this_version(self, ws):
        v1 = _section(card("fraud/1", workspace=ws), "Approvals and alias history")
        rows = [line for line in v1.splitlines() if "| champion |" in line]
        assert len(rows) == 2
        assert rows[0].endswith("| tester | champion | unset | 1 | first release |")
        assert rows[1].endswith("| tester | champion | 1 | 2 | retrained |")
        v2 = _section(card("fraud/2", workspace=ws), "Approvals and alias history")
        assert "first release" not in v2 and "| champion | 1 | 2 | retrained |" in v2

    def test_promotion_requests_and_approvals_are_in_the_history(self, ws):
        v1 = _section(card("fraud/1", workspace=ws), "Approvals and alias history")
        rows = [line for line in v1.splitlines() if "| production |" in line]
        assert len(rows) == 3
        assert rows[0].endswith(
            "| promotion 1 requested (applied) | tester | production | unset | 1 | ship it |"
        )
        assert rows[1].endswith(
            "| promotion 1 approved | rita | production | unset | 1 | holdout AUC confirmed |"
        )
        assert "| alias moved | rita | production | unset | 1 | promotion request 1" in rows[2]
        v2 = _section(card("fraud/2", workspace=ws), "Approvals and alias history")
        assert "production" not in v2

    def test_an_alias_or_models_uri_names_the_same_version(self, ws):
        by_alias = card("fraud@champion", workspace=ws)
        assert by_alias.startswith("# Model card: fraud version 2")
        assert card("models:/fraud/1", workspace=ws).startswith("# Model card: fraud version 1")

    def test_the_model_directorys_card_yaml_is_used_when_none_is_given(self, ws):
        shipped = card("fraud/2", workspace=ws)
        assert _section(shipped, "Intended use").strip() == "Written next to the weights."
        assert "card text from card.yaml in the model directory" in shipped
        given = card("fraud/2", workspace=ws, card_yaml=CARD)
        assert "Written next to the weights." not in given

    def test_a_version_without_a_run_or_readable_files_still_renders(self, ws):
        text = card("external/1", workspace=ws)
        assert text.startswith("# Model card: external version 1")
        assert _section(text, "Metrics").strip() == "_None recorded._"
        assert _section(text, "Training data").strip() == "_No dataset versions recorded._"
        assert "| Run | - |" in _section(text, "Environment")
        assert "Note: the model's files could not be read" in text

    def test_provenance_recorded_at_registration_is_preferred_to_the_run(self, ws):
        """Once a version carries its provenance snapshot, the card shows it, not the run."""
        collected = collect_card(ws, "fraud", 1)
        version = ws.registry.get_model_version("fraud", 1)
        snap = dataclasses.replace(
            version,
            version_label="1.1.0",
            provenance={
                "run_id": version.run_id,
                "run_name": "snapshotted",
                "git": {"commit": "feedbeef", "branch": "main", "dirty": True},
                "environment": {"python": "3.12.1", "requirements_digest": "d1g35t"},
                "metrics": {"auc": 0.5},
                "params": {"C": "2"},
                "datasets": [{"name": "tx", "version": "3", "digest": "abc"}],
            },
        )
        ws.registry.get_model_version = lambda name, number: snap  # type: ignore[method-assign]
        text = render_markdown(collect_card(ws, "fraud", 1))
        assert collected.provenance_from in ("run", "registration")
        assert text.startswith("# Model card: fraud version 1 (1.1.0)")
        assert "| auc | 0.5 |" in text and "| C | 2 |" in text and "0.9375" not in text
        assert "| tx | 3 | abc |" in _section(text, "Training data")
        environment = _section(text, "Environment")
        for row in ("| Git commit | feedbeef |", "| Git branch | main |"):
            assert row in environment
        assert "| Uncommitted changes | yes |" in environment
        assert "| Requirements digest | d1g35t |" in environment
        assert "provenance recorded at registration" in text

    def test_an_unknown_format_or_reference_is_invalid_input(self, ws):
        with pytest.raises(InvalidInput, match="md, html"):
            card("fraud/1", workspace=ws, format="pdf")
        with pytest.raises(InvalidInput, match="NAME/VERSION or NAME@ALIAS"):
            card("fraud", workspace=ws)
        with pytest.raises(NotFound):
            card("fraud/9", workspace=ws)


class TestHtml:
    def test_user_text_is_escaped_everywhere(self, tmp_path):
        home = tmp_path / "ws"
        workspace = Workspace(Settings.for_home(home, actor="<b>mallory</b>"))
        try:
            workspace.registry.create_registered_model("m", "<script>alert('model')</script>")
            workspace.registry.create_model_version(
                "m", "s3://b/m", description="<script>alert('version')</script>"
            )
            hostile = {"intended_use": "<script>alert('yaml')</script>", "extra": {"<i>": "&"}}
            html = card("m/1", format="html", card_yaml=hostile, workspace=workspace)
        finally:
            workspace.close()
        assert "<script" not in html
        for escaped in ("&lt;script&gt;alert(", "&lt;b&gt;mallory&lt;/b&gt;", "&lt;i&gt;", "&amp;"):
            assert escaped in html
        assert html.count("&lt;script&gt;") == 3

    def test_the_page_is_self_contained_with_every_section(self, ws):
        html = render_html(collect_card(ws, "fraud", 1, CARD))
        assert html.startswith("<!DOCTYPE html>") and "<style>" in html
        assert not re.search(r"<(link|script|img|iframe)\b|\bsrc=|@import", html)
        for title in (
            "Intended use",
            "Limitations",
            "Model details",
            "Training data",
            "Metrics",
            "Parameters",
            "Lineage",
            "Environment",
            "Approvals and alias history",
        ):
            assert f"<h2>{title}</h2>" in html
        assert "<td>auc</td><td>0.9375</td>" in html
        assert "<td>age|days</td><td>long</td>" in html

    def test_only_web_references_become_links(self, ws):
        html = render_html(collect_card(ws, "fraud", 1, CARD))
        assert '<a href="https://example.com/fraud-design">' in html
        assert "<li>javascript:alert(1)</li>" in html and 'href="javascript' not in html


class TestCardYaml:
    def test_a_file_is_read_and_lists_stay_lists(self, tmp_path):
        path = tmp_path / "card.yaml"
        path.write_text("intended_use: Fraud review.\nowners: alice\nlimitations:\n  - a\n  - b\n")
        sections = parse_card_yaml(path)
        assert (sections.intended_use, sections.owners, sections.limitations) == (
            "Fraud review.",
            ["alice"],
            ["a", "b"],
        )
        assert sections.origin == str(path)

    def test_an_unknown_top_level_key_is_named(self):
        with pytest.raises(InvalidInput, match=r"unknown field 'limitation'.*under 'extra'"):
            parse_card_yaml({"intended_use": "x", "limitation": "typo"})

    @pytest.mark.parametrize(
        ("doc", "field"),
        [
            ({"limitations": 3}, "limitations"),
            ({"intended_use": {"a": 1}}, "intended_use"),
            ({"owners": ["alice", 7]}, "owners"),
            ({"extra": ["not", "a", "mapping"]}, "extra"),
            ({"extra": {"nested": {"a": 1}}}, "extra.nested"),
        ],
    )
    def test_a_wrongly_typed_field_is_named(self, doc, field):
        with pytest.raises(InvalidInput, match=rf"field '{re.escape(field)}' must be"):
            parse_card_yaml(doc)

    def test_a_missing_file_bad_yaml_or_a_non_mapping_are_clear_errors(self, tmp_path):
        with pytest.raises(NotFound, match=r"nope\.yaml"):
            parse_card_yaml(tmp_path / "nope.yaml")
        bad = tmp_path / "bad.yaml"
        bad.write_text("intended_use: [unclosed\n")
        with pytest.raises(InvalidInput, match="not valid YAML"):
            parse_card_yaml(bad)
        listed = tmp_path / "list.yaml"
        listed.write_text("- a\n- b\n")
        with pytest.raises(InvalidInput, match="must be a mapping"):
            parse_card_yaml(listed)

    def test_an_empty_file_is_an_empty_card(self, tmp_path):
        empty = tmp_path / "empty.yaml"
        empty.write_text("")
        assert parse_card_yaml(empty).intended_use == ""


class TestCli:
    def test_prints_markdown_for_an_alias_with_a_card_file(self, seeded, tmp_path):
        card_file = tmp_path / "card.yaml"
        card_file.write_text("intended_use: From the command line.\n")
        args = ["--home", str(seeded.home), "models", "card", "fraud@champion"]
        result = CliRunner().invoke(app, [*args, "--card", str(card_file)])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("# Model card: fraud version 2")
        assert "From the command line." in result.stdout

    def test_writes_html_to_a_file(self, seeded, tmp_path):
        out = tmp_path / "cards" / "fraud-1.html"
        args = ["--home", str(seeded.home), "models", "card", "fraud/1", "--format", "html"]
        result = CliRunner().invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"wrote {out}"
        assert out.read_text().startswith("<!DOCTYPE html>")

    def test_a_bad_card_file_is_one_error_line_naming_the_key(self, seeded, tmp_path):
        card_file = tmp_path / "card.yaml"
        card_file.write_text("intended_use: x\nlimitatons: typo\n")
        home = seeded.home
        result = run(
            "--home", str(home), "models", "card", "fraud/1", "--card", str(card_file), cwd=tmp_path
        )
        assert result.returncode == 2
        assert result.stderr.startswith("Error: ") and "'limitatons'" in result.stderr
        assert result.stdout == ""
