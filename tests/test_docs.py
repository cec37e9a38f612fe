"""Every example in README.md and docs/*.md runs, so the docs cannot drift from the code.

Per document, in order, in the test's fresh temp directory (the autouse fixture in conftest.py
makes it the cwd and clears ``LOOPLINE_*``):

- ```python blocks run in one namespace shared by the document's blocks;
- ```console blocks run each ``$ loopline ...`` line as a real process, which must exit 0.
  Lines without ``$`` are the output shown to readers and are not compared. A line may start
  with environment assignments (``$ LOOPLINE_ACTOR=alice loopline config show``);
- ```bash blocks (set-up commands, anything needing PostgreSQL or S3) and every other language
  are not executed.

HTML comments right before a fence steer it:

- ``<!-- expect-exit: 3 -->``: every command of the next console block exits 3;
- ``<!-- write-file: loopline.toml -->``: the next block's text is written to that path (relative
  to the temp directory) when the document reaches it, so a ``toml`` example is the real file.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<lang>[\w+-]*)[^`]*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*(?P<name>[\w-]+)\s*:\s*(?P<value>.*?)\s*-->\s*$")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
EXECUTED = {"python", "console"}
COMMAND_TIMEOUT_S = 120


@dataclass
class Block:
    lang: str
    text: str
    line: int
    """1-based line of the opening fence, for failure messages."""
    directives: dict[str, str] = field(default_factory=dict)


def parse_blocks(markdown: str) -> list[Block]:
    """Fenced code blocks in document order, each with the directives right above it."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    pending: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = _DIRECTIVE.match(line)
        fence = _FENCE.match(line)
        if directive:
            pending[directive["name"]] = directive["value"]
        elif fence:
            indent, ticks = fence["indent"], fence["fence"]
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(ticks):
                text = lines[i]
                body.append(text[len(indent) :] if text.startswith(indent) else text.lstrip())
                i += 1
            blocks.append(
                Block(fence["lang"].lower(), "\n".join(body) + "\n", i - len(body), pending)
            )
            pending = {}
        elif line.strip():
            pending = {}  # a directive applies only to the block right below it
        i += 1
    return blocks


def console_commands(block: Block) -> list[tuple[int, str]]:
    """``(line number, command)`` for each ``$`` line; a trailing ``\\`` continues a command."""
    commands: list[tuple[int, str]] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("$ "):
            number, command = block.line + 1 + i, lines[i][2:]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            commands.append((number, command))
        i += 1
    return commands


def run_console_command(doc: str, number: int, command: str, expected_exit: int) -> None:
    words = shlex.split(command)
    env = dict(os.environ)
    while words and _ENV_ASSIGNMENT.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words or words[0] != "loopline":
        pytest.fail(
            f"{doc}:{number}: console blocks may only run 'loopline' commands, got {command!r}; "
            "put commands that are not executed in a ```bash block"
        )
    result = subprocess.run(
        [sys.executable, "-m", "loopline", *words[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    if result.returncode != expected_exit:
        pytest.fail(
            f"{doc}:{number}: `{command}` exited {result.returncode}, expected {expected_exit}\n"
            f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}"
        )


_ELLIPSIS = re.compile(r"\.\.\.|…")


def expected_output(code: str) -> list[str]:
    """What the reader is told a block prints: a top-level ``print(...)  # shown`` line's
    comment, or the ``# shown`` lines right under a ``print(...)``. ``...`` or ``…`` in them
    match any text."""
    expected: list[str] = []
    after_print = False
    for line in code.splitlines():
        if after_print and line.startswith("# "):
            expected.append(line[2:])
            continue
        after_print = line.startswith("print(")
        if after_print and "  # " in line:
            expected.append(line.rsplit("  # ", 1)[1])
            after_print = False
    return expected


def output_matches(expected: str, printed: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in _ELLIPSIS.split(expected))
    return re.fullmatch(pattern, printed) is not None


def run_document(path: Path) -> list[tuple[str, str]]:
    """Run every example; return ``(expected, printed)`` for each documented output line."""
    doc = path.relative_to(ROOT).as_posix()
    namespace: dict[str, object] = {"__name__": f"docs_example_{path.stem}"}
    checked: list[tuple[str, str]] = []
    for block in parse_blocks(path.read_text(encoding="utf-8")):
        if "write-file" in block.directives:
            target = Path(block.directives["write-file"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        if block.lang == "python":
            # Blank lines keep tracebacks pointing at the document's own line numbers.
            source = "\n" * block.line + block.text
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(source, doc, "exec"), namespace)
            expected = expected_output(block.text)
            if expected:
                lines = printed.getvalue().splitlines()
                assert len(lines) == len(expected), (
                    f"{doc}:{block.line}: the block printed {lines}, the text shows {expected}"
                )
                checked.extend(zip(expected, lines, strict=True))
        elif block.lang == "console":
            expected = int(block.directives.get("expect-exit", "0"))
            for number, command in console_commands(block):
                run_console_command(doc, number, command, expected)
    return checked


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_example_in_the_document_runs(path: Path) -> None:
    """Python blocks run in order in one namespace and print what the text says they print;
    console commands exit as documented."""
    checked = run_document(path)
    assert [(e, p) for e, p in checked if not output_matches(e, p)] == []


def test_every_document_has_executed_examples() -> None:
    """A document whose examples all sit in unexecuted blocks is untested; that must be chosen,
    not drift in: only docs/api.md (the lead's reference) may be without them."""
    untested = [
        p.relative_to(ROOT).as_posix()
        for p in DOCS
        if p.name != "api.md"
        and not any(b.lang in EXECUTED for b in parse_blocks(p.read_text(encoding="utf-8")))
    ]
    assert untested == []


def test_the_readme_set_up_section_holds_exactly_the_two_commands() -> None:
    """Install-and-demo first, then install-and-test, each in its own bash block."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## Set up\n" in readme
    section = readme.split("\n## Set up\n", 1)[1].split("\n## ", 1)[0]
    assert [b.text.strip() for b in parse_blocks(section) if b.lang == "bash"] == [
        "python3.11 -m venv .venv && .venv/bin/pip install . && .venv/bin/loopline demo",
        "python3.11 -m venv .venv && .venv/bin/pip install -e '.[dev]'"
        " && .venv/bin/python -m pytest -n 2",
    ]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs the same pytest invocation the README tells people to run."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert '"$VENV/bin/python" -m pytest -n 2\n' in script


class TestParseBlocks:
    def test_reads_language_text_line_and_the_directive_right_above(self) -> None:
        """A directive binds to the next fence; any other text in between unbinds it."""
        text = (
            "intro\n<!-- expect-exit: 2 -->\n```console\n$ loopline x\n```\n\n```python\n1\n```\n"
        )
        blocks = parse_blocks(text)
        assert [(b.lang, b.text, b.line, b.directives) for b in blocks] == [
            ("console", "$ loopline x\n", 3, {"expect-exit": "2"}),
            ("python", "1\n", 7, {}),
        ]

    def test_a_directive_separated_by_prose_is_dropped(self) -> None:
        blocks = parse_blocks("<!-- expect-exit: 2 -->\nsome prose\n```console\n$ loopline\n```\n")
        assert blocks[0].directives == {}

    def test_indented_fences_inside_lists_are_dedented(self) -> None:
        blocks = parse_blocks("1. step\n\n   ```python\n   x = 1\n   ```\n")
        assert blocks[0].text == "x = 1\n"

    def test_console_commands_join_backslash_continuations(self) -> None:
        block = parse_blocks("```console\n$ loopline a \\\n    b\nout\n$ loopline c\n```\n")[0]
        assert console_commands(block) == [(2, "loopline a  b"), (5, "loopline c")]


class TestConsoleCommands:
    def test_a_command_other_than_loopline_is_refused_not_skipped(self) -> None:
        """Whatever a console block shows is executed, so it may show only loopline commands."""
        with pytest.raises(pytest.fail.Exception, match="may only run 'loopline' commands"):
            run_console_command("doc.md", 1, "LOOPLINE_ACTOR=alice echo hi", 0)


class TestDocumentedOutput:
    def test_reads_inline_and_following_comments_of_top_level_prints(self) -> None:
        code = "x = 1  # not output\nprint(x)  # 1\nprint(2)\n# 2\n# more\n\n# prose\n"
        assert expected_output(code) == ["1", "2", "more"]

    def test_an_ellipsis_matches_any_text_and_nothing_else_is_loose(self) -> None:
        assert output_matches("run ... is done", "run 3f0c is done")
        assert output_matches("blob 6acf… is corrupt", "blob 6acf9680 is corrupt")
        assert not output_matches("[1.0, 0.5]", "[1.0, 0.25]")
