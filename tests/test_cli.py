"""The ``loopline`` command, run as a real process: output, exit codes and error lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import loopline


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    full_env.update({"COLUMNS": "200", "NO_COLOR": "1"})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "loopline", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestBasics:
    def test_version(self, tmp_path: Path):
        result = run("--version", cwd=tmp_path)
        assert result.returncode == 0
        assert result.stdout.strip() == f"loopline {loopline.__version__}"

    def test_help_lists_the_commands(self, tmp_path: Path):
        result = run("--help", cwd=tmp_path)
        assert result.returncode == 0
        for command in ("init", "demo", "gc", "config", "db", "blobs", "events", "lineage"):
            assert command in result.stdout

    def test_demo_runs_end_to_end_and_cleans_up(self, tmp_path: Path):
        result = run("demo", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "steps done" in result.stdout
        assert "deduplicated" in result.stdout
        assert "every byte verified; the table equals the exported CSV" in result.stdout
        assert "wine@1 passed" in result.stdout
        assert "@champion <- run" in result.stdout
        assert "<- dataset_version:wine@1" in result.stdout
        assert (
            "6 steps ran" in result.stdout
            and "@challenger <- dataset_version:wine@1" in result.stdout
        )
        assert "6 of 6 steps cached" in result.stdout
        assert "load -> validate -> split -> tune -> train -> evaluate" in result.stdout
        assert "APPLIED by reviewer" in result.stdout
        assert "model card with" in result.stdout

    def test_demo_can_keep_its_workspace(self, tmp_path: Path):
        result = run("demo", "--dir", str(tmp_path / "d"), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "d" / "loopline.toml").is_file()
        events = run("events", "list", "--action", "dataset.version_created", cwd=tmp_path / "d")
        assert "dataset.version_created" in events.stdout


class TestInitAndConfig:
    def test_init_creates_the_workspace_layout(self, tmp_path: Path):
        result = run("init", "ws", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        ws = tmp_path / "ws"
        assert (ws / "loopline.toml").is_file()
        assert (ws / ".loopline" / "loopline.db").is_file()
        assert (ws / ".loopline" / "artifacts").is_dir()
        assert "ready in" in result.stdout

    def test_init_twice_keeps_the_existing_config_and_workspace_id(self, tmp_path: Path):
        run("init", cwd=tmp_path)
        (tmp_path / "loopline.toml").write_text(
            (tmp_path / "loopline.toml").read_text() + 'actor = "kept"\n'
        )
        first = run("events", "list", cwd=tmp_path).stdout
        second = run("init", cwd=tmp_path)
        assert second.returncode == 0
        assert 'actor = "kept"' in (tmp_path / "loopline.toml").read_text()
        assert first.count("workspace.init") == 1
        assert run("events", "list", cwd=tmp_path).stdout.count("workspace.init") == 1

    def test_config_show_reports_values_and_their_sources(self, tmp_path: Path):
        run("init", cwd=tmp_path)
        env = {"LOOPLINE_ACTOR": "ci-bot", "LOOPLINE_STORE_URI": "postgresql://u:hunter2@h/db"}
        result = run("config", "show", "--json", cwd=tmp_path / ".loopline", env=env)
        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout)
        assert shown["actor"] == {"value": "ci-bot", "source": "env LOOPLINE_ACTOR"}
        assert shown["store_uri"]["value"] == "postgresql://u:***@h/db"
        assert shown["artifact_uri"]["source"].startswith("file ")
        assert shown["home"]["value"] == str(tmp_path.resolve())
        assert "hunter2" not in result.stdout + result.stderr

    def test_config_show_flag_beats_env(self, tmp_path: Path):
        result = run(
            "--artifacts",
            "/flag/path",
            "config",
            "show",
            "--json",
            cwd=tmp_path,
            env={"LOOPLINE_ARTIFACT_URI": "/env/path"},
        )
        shown = json.loads(result.stdout)
        assert shown["artifact_uri"] == {"value": "/flag/path", "source": "flag"}


class TestDatabaseCommands:
    def test_current_then_upgrade_then_current(self, tmp_path: Path):
        uri = f"sqlite:///{tmp_path / 'fresh.db'}"
        before = run("--store", uri, "db", "current", cwd=tmp_path)
        assert before.returncode == 0, before.stderr
        assert "current: (empty)" in before.stdout
        assert "needs 'loopline db upgrade'" in before.stdout
        upgraded = run("--store", uri, "db", "upgrade", cwd=tmp_path)
        assert "upgraded (empty) ->" in upgraded.stdout
        after = run("--store", uri, "db", "current", cwd=tmp_path)
        assert "up to date" in after.stdout
        again = run("--store", uri, "db", "upgrade", cwd=tmp_path)
        assert "already at revision" in again.stdout


class TestBlobCommands:
    def test_put_get_verify_list(self, tmp_path: Path):
        run("init", cwd=tmp_path)
        (tmp_path / "data.bin").write_bytes(os.urandom(10_000))
        digest = run("blobs", "put", "data.bin", cwd=tmp_path).stdout.strip()
        assert len(digest) == 64
        got = run("blobs", "get", digest, "copy.bin", cwd=tmp_path)
        assert got.returncode == 0, got.stderr
        assert (tmp_path / "copy.bin").read_bytes() == (tmp_path / "data.bin").read_bytes()
        assert "1 blobs verified" in run("blobs", "verify", cwd=tmp_path).stdout
        assert digest in run("blobs", "list", cwd=tmp_path).stdout

    def test_put_and_get_a_directory(self, tmp_path: Path):
        run("init", cwd=tmp_path)
        (tmp_path / "d" / "s").mkdir(parents=True)
        (tmp_path / "d" / "s" / "f.txt").write_text("x")
        out = run("blobs", "put", "d", cwd=tmp_path).stdout
        manifest = out.split()[0]
        result = run("blobs", "get", "--dir", manifest, "restored", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "restored" / "s" / "f.txt").read_text() == "x"

    def test_verify_reports_a_corrupt_blob_and_fails(self, tmp_path: Path):
        run("init", cwd=tmp_path)
        (tmp_path / "f").write_bytes(b"some content" * 100)
        digest = run("blobs", "put", "f", cwd=tmp_path).stdout.strip()
        stored = tmp_path / ".loopline" / "artifacts" / digest[:2] / digest[2:]
        stored.chmod(0o644)
        stored.write_bytes(b"Some content" + b"some content" * 99)
        result = run("blobs", "verify", cwd=tmp_path)
        assert result.returncode == 7
        assert f"corrupt {digest}" in result.stdout
        assert "Error: 1 of 1 blobs are corrupt" in result.stderr

    def test_gc_dry_run_then_delete(self, tmp_path: Path):
        run("init", cwd=tmp_path)
        (tmp_path / "f").write_bytes(b"unreferenced")
        digest = run("blobs", "put", "f", cwd=tmp_path).stdout.strip()
        young = run("gc", cwd=tmp_path)
        assert "kept 0 referenced and 1 younger than the grace period" in young.stdout
        dry = run("gc", "--dry-run", "--grace", "0", cwd=tmp_path)
        assert "would delete 1 blobs" in dry.stdout
        assert digest in run("blobs", "list", cwd=tmp_path).stdout
        done = run("gc", "--grace", "0", cwd=tmp_path)
        assert "deleted 1 blobs (12 bytes)" in done.stdout
        assert digest not in run("blobs", "list", cwd=tmp_path).stdout


class TestLineageAndEvents:
    def test_lineage_show_prints_the_upstream_tree(self, tmp_path: Path):
        run("init", cwd=tmp_path)
        code = (
            "import loopline as ll; ll.use_workspace('.');"
            "ll.link('dataset_version:d1', 'run:r1', 'trained_on');"
            "ll.link('run:r1', 'model_version:m1', 'produced')"
        )
        subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=60)
        up = run("lineage", "show", "model_version:m1", cwd=tmp_path)
        assert up.returncode == 0, up.stderr
        assert "run:r1" in up.stdout and "dataset_version:d1" in up.stdout
        assert "trained_on" in up.stdout
        down = run("lineage", "show", "--downstream", "dataset_version:d1", cwd=tmp_path)
        assert "model_version:m1" in down.stdout
        none = run("lineage", "show", "run:unknown", cwd=tmp_path)
        assert "no upstream lineage recorded" in none.stdout

    def test_events_list_filters_by_object(self, tmp_path: Path):
        run("init", cwd=tmp_path)
        result = run("events", "list", "--action", "workspace.init", cwd=tmp_path)
        assert "workspace.init" in result.stdout
        bad = run("events", "list", "--object", "no-colon", cwd=tmp_path)
        assert bad.returncode == 2
        assert "must look like KIND:ID" in bad.stderr


class TestErrors:
    def _one_error_line(self, result: subprocess.CompletedProcess) -> str:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("Error: ")
        assert "Traceback" not in result.stderr
        return lines[0]

    def test_an_unknown_store_scheme_is_one_clear_line(self, tmp_path: Path):
        result = run("--store", "mysql://x/y", "db", "current", cwd=tmp_path)
        assert result.returncode == 2
        line = self._one_error_line(result)
        assert "unknown scheme 'mysql'" in line and "postgresql, sqlite" in line

    def test_an_unknown_artifact_scheme_is_one_clear_line(self, tmp_path: Path):
        result = run("--artifacts", "gs://bucket/x", "blobs", "list", cwd=tmp_path)
        assert result.returncode == 2
        assert "unknown scheme 'gs'" in self._one_error_line(result)

    def test_an_unreachable_database_says_so(self, tmp_path: Path):
        uri = "postgresql://postgres@127.0.0.1:1/nowhere"
        result = run("--store", uri, "db", "upgrade", cwd=tmp_path)
        assert result.returncode == 8
        line = self._one_error_line(result)
        assert "cannot open metadata store postgresql://postgres@127.0.0.1:1/nowhere" in line
        assert "running" in line

    def test_a_password_never_reaches_the_error_line(self, tmp_path: Path):
        uri = "postgresql://postgres:hunter2@127.0.0.1:1/nowhere"
        result = run("--store", uri, "db", "upgrade", cwd=tmp_path)
        assert result.returncode == 8
        assert "hunter2" not in result.stderr + result.stdout
        assert "postgres:***@" in result.stderr

    def test_an_unwritable_location_is_named(self, tmp_path: Path):
        (tmp_path / "a-file").write_text("not a directory")
        uri = f"sqlite:///{tmp_path / 'a-file' / 'sub' / 'x.db'}"
        result = run("--store", uri, "db", "upgrade", cwd=tmp_path)
        assert result.returncode == 6
        line = self._one_error_line(result)
        assert "cannot create directory" in line and "a-file" in line

    def test_a_bad_config_value_names_the_setting(self, tmp_path: Path):
        (tmp_path / "loopline.toml").write_text("gc_grace_seconds = -5\n")
        result = run("gc", cwd=tmp_path)
        assert result.returncode == 2
        line = self._one_error_line(result)
        assert "gc_grace_seconds" in line and "loopline.toml" in line

    def test_verbose_shows_the_traceback(self, tmp_path: Path):
        result = run("--verbose", "--store", "mysql://x/y", "db", "current", cwd=tmp_path)
        assert result.returncode == 2
        assert "Traceback" in result.stderr
        assert "Error: store URI" in result.stderr

    @pytest.mark.parametrize("digest", ["nothex", "../../etc/passwd"])
    def test_a_malformed_digest_is_rejected(self, tmp_path: Path, digest: str):
        run("init", cwd=tmp_path)
        result = run("blobs", "get", digest, "out", cwd=tmp_path)
        assert result.returncode == 2
        assert "is not a blob digest" in self._one_error_line(result)
