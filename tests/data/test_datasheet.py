"""Datasheets: every section shows what the workspace knows about one dataset version (its
contents, versions, validations and lineage), the user-written YAML is checked strictly, and
HTML escapes whatever users typed and whatever the data holds."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import loopline as ll
from loopline.cli.main import app
from loopline.config import Settings
from loopline.data.datasheet import (
    MAX_FILES,
    collect_datasheet,
    datasheet,
    parse_sheet_yaml,
    render_html,
    render_markdown,
)
from loopline.data.expectations import RowCount, Suite
from loopline.documents import size, when
from loopline.errors import InvalidInput, NotFound
from loopline.workspace import Workspace
from tests.test_cli import run

EVIL = "<script>alert(1)</script>"
TABLE = pd.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "amount": [1.5, None, 3.0, 10.0],
        "country": ["NO", "SE", "NO", None],
        EVIL: ["a|b", "a|b", "c", "d"],
    }
)
SHEET = {
    "motivation": "Train the fraud scorer.",
    "composition": ["One row per card payment", "Amounts in EUR"],
    "collection_process": "Nightly export from the payments ledger.",
    "labeling": "Chargebacks within 90 days are fraud.",
    "uses": "Fraud models only.",
    "licence": "Internal use only.",
    "known_limitations": ["EU payments only", EVIL],
    "owners": "risk-data@example.com",
    "references": ["https://example.com/ledger", "javascript:alert(1)"],
    "extra": {"ticket": "DATA-7", "regions": ["EU", "UK"]},
}
EMBEDDED = "motivation: Images for the defect detector.\nlicence: CC-BY-4.0\n"


@dataclasses.dataclass(frozen=True)
class Seeded:
    home: Path
    run_id: str
    suite_size: int


def _seed(home: Path, tmp: Path) -> Seeded:
    """``tx@1`` (a table: validated twice, read by run ``train`` whose model became
    ``fraud/1`` at alias ``champion``), ``tx@2`` (never validated nor read), and ``images@1``
    (three files, one of them ``datasheet.yaml``)."""
    ws = Workspace(Settings.for_home(home, actor="tester"))
    try:
        with ll.use_workspace(ws):
            ws.data.log_table(TABLE, "tx", message="October | extract")
            suite = ws.data.infer_expectations("tx@1")
            assert ws.data.validate("tx@1", suite).success
            too_small = Suite(name="big-enough", expectations=[RowCount(min=100)])
            assert not ws.data.validate("tx@1", too_small).success
            with ll.start_run(capture=False, run_name="train") as train:
                ws.data.use("tx@1", train.run_id)
                X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
                info = ll.models.log_model(LogisticRegression().fit(X, y), "model")
            ll.models.register(info.model_uri, "fraud")
            ll.models.promote("fraud", 1, "champion")
            ws.data.log_table(TABLE.head(2), "tx", message="sample")
            images = tmp / "images"
            images.mkdir()
            (images / "a.png").write_bytes(b"x" * 1500)
            (images / "b.png").write_bytes(b"yy")
            (images / "datasheet.yaml").write_text(EMBEDDED)
            ws.data.add(images, "images")
    finally:
        ll.use_workspace(None)
        ws.close()
    return Seeded(home, train.run_id, len(suite.expectations))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Read-only: tests that add versions make their own workspace."""
    root = tmp_path_factory.mktemp("datasheet")
    return _seed(root / "ws", root)


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


def _headings(markdown: str) -> list[str]:
    return [line[3:] for line in markdown.splitlines() if line.startswith("## ")]


class TestMarkdown:
    def test_the_header_names_version_kind_digest_creator_and_message(self, ws):
        v = ws.data.resolve("tx@1")
        text = datasheet("tx@1", workspace=ws)
        assert text.startswith("# Datasheet: tx@1\n")
        header = text.split("\n## ", 1)[0]
        assert f"| Digest | {v.digest} |" in header
        assert f"| Created | {when(v.created_ms)} |" in header
        assert "| Kind | table |" in header and "| Created by | tester |" in header
        assert "| Message | October \\| extract |" in header

    def test_every_section_appears_in_order_with_the_yaml_filled_in(self, ws):
        text = datasheet("tx@1", workspace=ws, sheet_yaml=SHEET)
        assert _headings(text) == [
            "Motivation",
            "Composition",
            "Collection process",
            "Labeling",
            "Uses",
            "Licence",
            "Known limitations",
            "Owners",
            "References",
            "Additional information",
            "Contents",
            "Versions",
            "Validation history",
            "Lineage",
        ]
        assert _section(text, "Motivation").strip() == "Train the fraud scorer."
        assert _section(text, "Composition").strip().splitlines() == [
            "- One row per card payment",
            "- Amounts in EUR",
        ]
        assert _section(text, "Licence").strip() == "Internal use only."
        assert _section(text, "Owners").strip() == "- risk-data@example.com"
        assert "| regions | EU, UK |" in _section(text, "Additional information")

    def test_core_fields_nobody_wrote_say_not_documented_and_others_are_left_out(self, ws):
        text = datasheet("tx@1", workspace=ws, sheet_yaml={"motivation": "Why."})
        assert _headings(text)[:6] == [
            "Motivation",
            "Composition",
            "Collection process",
            "Labeling",
            "Licence",
            "Known limitations",
        ]
        for title in ("Composition", "Collection process", "Labeling", "Licence"):
            assert _section(text, title).strip() == "_Not documented._"
        assert _section(text, "Known limitations").strip() == "_Not documented._"
        assert "## Preprocessing" not in text and "## Owners" not in text

    def test_a_table_shows_rows_and_per_column_type_nulls_distinct_range_and_top_values(self, ws):
        contents = _section(datasheet("tx@1", workspace=ws), "Contents")
        assert "| Rows | 4 |\n| Columns | 4 |\n" in contents
        rows = [line for line in contents.splitlines() if line.startswith("| ")][4:]
        assert rows == [
            "| column | type | nulls | distinct | min | max | mean | top values |",
            "| id | int64 | 0 (0.00%) | 4 | 1 | 4 | 2.5 |  |",
            "| amount | double | 1 (25.00%) | 3 | 1.5 | 10 | 4.83333 |  |",
            "| country | string | 1 (25.00%) | 2 |  |  |  | NO (2), SE (1) |",
            f"| {EVIL} | string | 0 (0.00%) | 3 |  |  |  | a\\|b (2), c (1), d (1) |",
        ]

    def test_the_version_history_lists_every_version_newest_first_marking_this_one(self, ws):
        v1, v2 = ws.data.resolve("tx@1"), ws.data.resolve("tx@2")
        section = _section(datasheet("tx@1", workspace=ws), "Versions")
        assert section.strip().splitlines()[2:] == [
            f"| tx@2 | {when(v2.created_ms)} | tester | 2 rows, {size(v2.total_size)} | sample |",
            f"| tx@1 (this version) | {when(v1.created_ms)} | tester | 4 rows, "
            f"{size(v1.total_size)} | October \\| extract |",
        ]

    def test_validation_history_lists_each_validation_of_this_version_oldest_first(
        self, ws, seeded
    ):
        events = ws.events.list(object_id="tx@1", action="dataset.validated")
        n = seeded.suite_size
        section = _section(datasheet("tx@1", workspace=ws), "Validation history")
        assert section.strip().splitlines()[2:] == [
            f"| {when(events[0].time_ms)} | tester | tx | passed | {n} | {n} | 0 | 0 |",
            f"| {when(events[1].time_ms)} | tester | big-enough | failed | 1 | 0 | 1 | 0 |",
        ]

    def test_lineage_lists_the_runs_that_read_it_and_the_models_registered_from_them(
        self, ws, seeded
    ):
        info = ws.tracking.get_run(seeded.run_id).info
        section = _section(datasheet("tx@1", workspace=ws), "Lineage")
        assert (
            f"| {seeded.run_id} | train | FINISHED | {when(info.start_time)} | tester | read |"
            in section
        )
        assert f"| fraud/1 | {seeded.run_id} | champion |" in section

    def test_a_version_never_validated_nor_read_says_so(self, ws):
        text = datasheet("tx@latest", workspace=ws)
        assert text.startswith("# Datasheet: tx@2\n")
        assert _section(text, "Validation history").strip() == "_This version was never validated._"
        lineage = _section(text, "Lineage")
        assert "_No run has recorded reading this version._" in lineage
        assert "_No model version was registered from a run that read it._" in lineage

    def test_the_user_yaml_can_be_a_file_named_in_the_footer(self, ws, tmp_path):
        path = tmp_path / "sheet.yaml"
        path.write_text("motivation: From a file.\n")
        text = datasheet("tx@1", workspace=ws, sheet_yaml=path)
        assert _section(text, "Motivation").strip() == "From a file."
        assert text.rstrip().endswith(f"; sheet text from {path}._")


class TestFileDataset:
    def test_the_versions_own_datasheet_yaml_is_used_and_its_files_listed(self, ws):
        text = datasheet("images@1", workspace=ws)
        assert _section(text, "Motivation").strip() == "Images for the defect detector."
        assert _section(text, "Licence").strip() == "CC-BY-4.0"
        contents = _section(text, "Contents")
        assert "| Files | 3 |\n| Total size | 1.6 KB |\n" in contents
        assert contents.strip().splitlines()[-3:] == [
            "| a.png | 1.5 KB |",
            "| b.png | 2 B |",
            f"| datasheet.yaml | {len(EMBEDDED)} B |",
        ]
        assert text.rstrip().endswith("; sheet text from datasheet.yaml in the dataset's files._")

    def test_a_sheet_passed_in_wins_over_the_versions_own(self, ws):
        text = datasheet("images@1", workspace=ws, sheet_yaml={"licence": "Passed in."})
        assert _section(text, "Licence").strip() == "Passed in."
        assert _section(text, "Motivation").strip() == "_Not documented._"

    def test_only_the_first_files_are_listed_and_the_rest_counted(self, tmp_path):
        many = tmp_path / "many"
        many.mkdir()
        for i in range(MAX_FILES + 2):
            (many / f"f{i:03}.txt").write_text(str(i))
        with Workspace(Settings.for_home(tmp_path / "ws", actor="tester")) as workspace:
            workspace.data.add(many, "many")
            sheet = collect_datasheet(workspace, "many@1")
            text = render_markdown(sheet)
        assert (len(sheet.files), sheet.files_omitted) == (MAX_FILES, 2)
        assert sheet.files[-1].path == f"f{MAX_FILES - 1:03}.txt"
        assert "_... and 2 more files._" in text

    def test_a_broken_datasheet_yaml_in_the_files_is_an_error_naming_it(self, tmp_path):
        files = tmp_path / "files"
        files.mkdir()
        (files / "datasheet.yaml").write_text("license: MIT\n")
        with Workspace(Settings.for_home(tmp_path / "ws", actor="tester")) as workspace:
            workspace.data.add(files, "broken")
            with pytest.raises(InvalidInput, match=r"datasheet datasheet\.yaml in the dataset"):
                datasheet("broken@1", workspace=workspace)


class TestHtml:
    def test_is_one_self_contained_page_with_every_section(self, ws):
        html = datasheet("tx@1", format="html", workspace=ws, sheet_yaml=SHEET)
        assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
        assert not re.search(r"<(link|script|img|iframe)\b|\bsrc=|@import", html)
        for title in ("Motivation", "Licence", "Contents", "Versions", "Validation history"):
            assert f"<h2>{title}</h2>" in html
        assert '<td class="num">1 (25.00%)</td>' in html

    def test_escapes_script_in_user_text_and_in_column_names(self, ws):
        html = render_html(collect_datasheet(ws, "tx@1", SHEET))
        assert "<script>" not in html
        assert '<li class="prose">&lt;script&gt;alert(1)&lt;/script&gt;</li>' in html
        assert "<tr><td>&lt;script&gt;alert(1)&lt;/script&gt;</td><td>string</td>" in html

    def test_only_web_references_become_links(self, ws):
        html = render_html(collect_datasheet(ws, "tx@1", SHEET))
        assert '<a href="https://example.com/ledger">' in html
        assert "<li>javascript:alert(1)</li>" in html and 'href="javascript' not in html


class TestSheetYaml:
    def test_a_file_is_read_and_lists_stay_lists(self, tmp_path):
        path = tmp_path / "sheet.yaml"
        path.write_text("licence: MIT\nowners: alice\nknown_limitations:\n  - a\n  - b\n")
        sections = parse_sheet_yaml(path)
        assert (sections.licence, sections.owners, sections.known_limitations) == (
            "MIT",
            ["alice"],
            ["a", "b"],
        )
        assert sections.origin == str(path)

    def test_an_unknown_top_level_key_is_named_with_the_valid_ones(self):
        with pytest.raises(InvalidInput) as caught:
            parse_sheet_yaml({"motivation": "x", "limitations": "typo"})
        assert str(caught.value) == (
            "datasheet: unknown field 'limitations'; the fields are motivation, composition, "
            "collection_process, preprocessing, labeling, uses, distribution, licence, "
            "maintenance, known_limitations, owners, references, extra (put your own under "
            "'extra')"
        )

    def test_license_is_refused_naming_the_one_accepted_spelling(self):
        with pytest.raises(InvalidInput, match=r"unknown field 'license'; write 'licence'"):
            parse_sheet_yaml({"license": "MIT"})

    @pytest.mark.parametrize(
        ("doc", "field"),
        [
            ({"licence": 3}, "licence"),
            ({"motivation": {"a": 1}}, "motivation"),
            ({"owners": ["alice", 7]}, "owners"),
            ({"extra": ["not", "a", "mapping"]}, "extra"),
            ({"extra": {"nested": {"a": 1}}}, "extra.nested"),
        ],
    )
    def test_a_wrongly_typed_field_is_named(self, doc, field):
        with pytest.raises(InvalidInput, match=rf"^datasheet field '{re.escape(field)}' must be"):
            parse_sheet_yaml(doc)

    def test_a_missing_file_bad_yaml_or_a_non_mapping_are_clear_errors(self, tmp_path):
        with pytest.raises(NotFound, match=r"nope\.yaml"):
            parse_sheet_yaml(tmp_path / "nope.yaml")
        bad = tmp_path / "bad.yaml"
        bad.write_text("motivation: [unclosed\n")
        with pytest.raises(InvalidInput, match="not valid YAML"):
            parse_sheet_yaml(bad)
        listed = tmp_path / "list.yaml"
        listed.write_text("- a\n- b\n")
        with pytest.raises(InvalidInput, match="must be a mapping"):
            parse_sheet_yaml(listed)

    def test_an_unknown_format_is_refused(self, ws):
        with pytest.raises(InvalidInput, match="md, html"):
            datasheet("tx@1", format="pdf", workspace=ws)
        with pytest.raises(NotFound):
            datasheet("nope@1", workspace=ws)


class TestCli:
    def test_prints_markdown_with_a_sheet_file(self, seeded, tmp_path):
        sheet = tmp_path / "sheet.yaml"
        sheet.write_text("licence: From the command line.\n")
        args = ["--home", str(seeded.home), "data", "datasheet", "tx@1", "--sheet", str(sheet)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("# Datasheet: tx@1\n")
        assert _section(result.stdout, "Licence").strip() == "From the command line."

    def test_writes_html_to_a_file(self, seeded, tmp_path):
        out = tmp_path / "sheets" / "tx.html"
        args = ["--home", str(seeded.home), "data", "datasheet", "tx@1", "--format", "html"]
        result = CliRunner().invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"wrote {out}"
        assert out.read_text().startswith("<!DOCTYPE html>")
        assert "<title>Datasheet: tx@1</title>" in out.read_text()

    def test_a_bad_sheet_file_is_one_error_line_naming_the_key(self, seeded, tmp_path):
        sheet = tmp_path / "sheet.yaml"
        sheet.write_text("license: MIT\n")
        home = str(seeded.home)
        result = run(
            "--home", home, "data", "datasheet", "tx@1", "--sheet", str(sheet), cwd=tmp_path
        )
        assert result.returncode == 2
        assert result.stderr.startswith("Error: ") and "write 'licence'" in result.stderr
        assert result.stdout == ""
