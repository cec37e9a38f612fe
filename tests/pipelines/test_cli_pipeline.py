"""``loopline pipeline`` as a real process: run (live lines, summary, exit codes), list, show,
graph, resume."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_cli import run

FLOWS = """
from pathlib import Path

from loopline.pipelines import pipeline, step


@step
def numbers(n: int) -> list:
    return list(range(n))


@step
def total(values: list) -> int:
    if Path("fail.flag").exists():
        raise RuntimeError("asked to fail")
    return sum(values)


@step
def report(value: int) -> dict:
    return {"total": value}


@pipeline
def flow(n: int = 3):
    report(total(numbers(n)))
"""


def _run_id(output: str) -> str:
    found = re.search(r"run ([0-9a-f]{32}) ", output)
    assert found, output
    return found[1]


def test_run_list_show_graph_and_resume(tmp_path: Path):
    assert run("init", cwd=tmp_path).returncode == 0
    (tmp_path / "flows.py").write_text(FLOWS)

    first = run("pipeline", "run", "flows:flow", "--param", "n=5", "--workers", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    for name in ("numbers", "total", "report"):
        assert re.search(rf"^  started +{name}$", first.stdout, re.M)
        assert re.search(rf"^  finished +{name} [0-9.]+s$", first.stdout, re.M)
    assert "FINISHED: 3 steps (3 finished)" in first.stdout

    second = run("pipeline", "run", "flows:flow", "-p", "n=5", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert re.search(r"^  cached +total from run [0-9a-f]{32}$", second.stdout, re.M)
    assert "FINISHED: 3 steps (3 cached)" in second.stdout
    cached_id = _run_id(second.stdout)

    forced = run("pipeline", "run", "flows:flow", "-p", "n=5", "--no-cache", cwd=tmp_path)
    assert "FINISHED: 3 steps (3 finished)" in forced.stdout

    listed = run("pipeline", "list", cwd=tmp_path)
    assert listed.returncode == 0
    assert listed.stdout.count("flows:flow") == 3
    assert cached_id in listed.stdout and "cached=3" in listed.stdout

    shown = run("pipeline", "show", cached_id, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "params: n=5" in shown.stdout
    assert re.search(r"total +│ cached .*outputs/output\.json \(json, [0-9a-f]{12}\)", shown.stdout)

    text = run("pipeline", "graph", cached_id, cwd=tmp_path)
    assert text.stdout == (
        "numbers [cached]\ntotal [cached]  <- numbers.output\nreport [cached]  <- total.output\n"
    )
    mermaid = run("pipeline", "graph", cached_id, "--format", "mermaid", cwd=tmp_path)
    assert mermaid.stdout.startswith("flowchart TD\n")
    assert "    n0 -->|output| n1" in mermaid.stdout
    out = tmp_path / "graph.dot"
    dot = run("pipeline", "graph", cached_id, "-f", "dot", "--out", str(out), cwd=tmp_path)
    assert dot.returncode == 0
    assert out.read_text().startswith("digraph pipeline {")
    assert 'n1 -> n2 [label="output -> value"];' in out.read_text()

    (tmp_path / "fail.flag").write_text("")
    failed = run("pipeline", "run", "flows:flow", "-p", "n=6", cwd=tmp_path)
    assert failed.returncode == 1
    assert re.search(r"^  failed +total .*RuntimeError: asked to fail$", failed.stdout, re.M)
    assert re.search(r"^  skipped +report \(upstream step 'total' failed\)$", failed.stdout, re.M)
    assert "Error: step 'total': RuntimeError: asked to fail" in failed.stderr
    (tmp_path / "fail.flag").unlink()
    resumed = run("pipeline", "resume", _run_id(failed.stdout), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "FINISHED: 3 steps (1 cached, 2 finished)" in resumed.stdout


def test_bad_targets_and_params_are_one_line_errors(tmp_path: Path):
    run("init", cwd=tmp_path)
    (tmp_path / "flows.py").write_text(FLOWS)
    missing = run("pipeline", "run", "nosuchmodule:flow", cwd=tmp_path)
    assert missing.returncode == 3
    assert "Error: cannot import module 'nosuchmodule'" in missing.stderr
    bad = run("pipeline", "run", "flows:flow", "-p", "n=many", cwd=tmp_path)
    assert bad.returncode == 2
    assert "Error: --param n='many': expected int" in bad.stderr
    unknown = run("pipeline", "run", "flows:flow", "--executor", "dask", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "unknown executor 'dask'; choose one of: local" in unknown.stderr
