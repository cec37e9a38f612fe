"""``loopline data`` as real processes: output, JSON and exit codes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.test_cli import run


def data(home: Path, *args: str):
    return run("--home", str(home), "data", *args, cwd=home.parent)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    assert run("init", str(tmp_path / "ws"), cwd=tmp_path).returncode == 0
    return tmp_path / "ws"


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    for i in range(3):
        (root / f"f{i}.txt").write_text(f"file {i}")
    (root / "sub" / "x.bin").write_bytes(b"\0" * 100)
    old = time.time() - 10
    for p in root.rglob("*"):
        os.utime(p, (old, old))
    return root


def test_add_says_what_it_did_and_versions_diff_checkout_follow(home: Path, tmp_path: Path):
    tree = _tree(tmp_path / "tree")
    first = data(home, "add", str(tree), "--name", "tree")
    again = data(home, "add", str(tree), "--name", "tree")
    (tree / "f1.txt").write_text("edited")
    second = data(home, "add", str(tree), "-n", "tree", "-m", "f1 edited")
    assert [r.returncode for r in (first, again, second)] == [0, 0, 0], second.stderr
    assert first.stdout.startswith("tree@1 created: 4 files, 118 B (hashed 4, unchanged 0)")
    assert again.stdout.strip() == "unchanged: the content equals tree@1; no new version"
    assert second.stdout.startswith("tree@2 created: 4 files, 118 B (hashed 1, unchanged 3)")
    versions = [
        json.loads(line) for line in data(home, "versions", "tree", "--json").stdout.splitlines()
    ]
    assert [(v["version"], v["message"], v["file_count"]) for v in versions] == [
        (2, "f1 edited", 4),
        (1, "", 4),
    ]
    diff = data(home, "diff", "tree@1", "tree@2")
    assert diff.stdout.splitlines() == [
        "tree@1 -> tree@2: 0 added, 0 removed, 1 modified, 3 unchanged file(s)",
        "  M f1.txt",
    ]
    out = tmp_path / "co"
    checkout = data(home, "checkout", "tree@1", str(out))
    assert checkout.returncode == 0 and (out / "f1.txt").read_text() == "file 1"
    again_into = data(home, "checkout", "tree@1", str(out))
    assert again_into.returncode == 4 and "not empty" in again_into.stderr
    listed = data(home, "list", "--json")
    assert json.loads(listed.stdout)["latest_version"] == 2
    shown = json.loads(data(home, "show", "tree@2", "--files", "--json").stdout)
    assert [f["path"] for f in shown["files"]] == ["f0.txt", "f1.txt", "f2.txt", "sub/x.bin"]


def test_tables_validate_and_gate_with_exit_10(home: Path, tmp_path: Path):
    good = pd.DataFrame({"id": range(100), "amount": [float(i) for i in range(100)]})
    good.to_csv(tmp_path / "good.csv", index=False)
    good.assign(amount=good["amount"] * 10).to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "broken.csv").write_text("id,amount\n1,2\n3,4,5\n6,7\n")
    assert data(home, "add", str(tmp_path / "good.csv"), "-n", "tx").returncode == 0
    suite = tmp_path / "suite.yaml"
    inferred = data(home, "infer-expectations", "tx@1", "-o", str(suite))
    assert inferred.returncode == 0 and suite.is_file()
    passed = data(
        home, "validate", "tx@1", "--suite", str(suite), "--report-dir", str(tmp_path / "r1")
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    data(home, "add", str(tmp_path / "bad.csv"), "-n", "tx")
    failed = data(
        home, "validate", "tx@2", "--suite", str(suite), "--report-dir", str(tmp_path / "r2")
    )
    assert failed.returncode == 10
    assert "FAILED value_range(amount)" in failed.stdout
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert report["success"] is False
    assert "<html" in (tmp_path / "r2" / "report.html").read_text().lower()
    broken = data(home, "add", str(tmp_path / "broken.csv"), "-n", "broken")
    assert broken.returncode == 0
    assert broken.stdout.startswith("broken@1 created: table, 2 rows x 2 columns")
    assert "skipped malformed line 3: expected 2 columns, got 3" in broken.stderr


def test_errors_exit_with_their_codes(home: Path, tmp_path: Path):
    unknown = data(home, "show", "nope@1")
    bad_ref = data(home, "show", "nope@zero")
    missing = data(home, "add", str(tmp_path / "missing"), "-n", "x")
    assert (unknown.returncode, bad_ref.returncode, missing.returncode) == (3, 2, 3)
    assert "dataset 'nope' not found" in unknown.stderr
    tree = _tree(tmp_path / "t")
    data(home, "add", str(tree), "-n", "t")
    assert data(home, "delete", "t", "--version", "1", "--yes").returncode == 0
    assert data(home, "show", "t@1").returncode == 3
