"""Settings resolution: flags > LOOPLINE_* env > loopline.toml (walking up) > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.config import Settings, load_settings, mask_uri
from loopline.errors import ConfigError


def _write_toml(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "loopline.toml"
    path.write_text(text)
    return path


class TestPrecedence:
    def test_defaults_live_under_dot_loopline_in_the_current_directory(self, tmp_path: Path):
        res = load_settings({}, env={}, cwd=tmp_path)
        assert res.settings.home == tmp_path.resolve()
        assert res.settings.store_uri == f"sqlite:///{tmp_path.resolve()}/.loopline/loopline.db"
        assert res.settings.artifact_uri == str(tmp_path.resolve() / ".loopline" / "artifacts")
        assert res.sources["store_uri"] == "default"
        assert res.config_file is None

    def test_the_file_is_found_by_walking_up_and_relative_paths_follow_it(self, tmp_path: Path):
        config = _write_toml(tmp_path, 'artifact_uri = "blobs"\nstore_uri = "sqlite:///meta.db"\n')
        deep = tmp_path / "a" / "b"
        deep.mkdir(parents=True)
        res = load_settings({}, env={}, cwd=deep)
        assert res.config_file == config
        assert res.settings.home == tmp_path.resolve()
        assert res.settings.artifact_uri == str(tmp_path.resolve() / "blobs")
        assert res.settings.store_uri == f"sqlite:///{tmp_path.resolve()}/meta.db"
        assert res.sources["artifact_uri"] == f"file {config}"

    def test_env_beats_the_file_and_flags_beat_env(self, tmp_path: Path):
        _write_toml(tmp_path, 'artifact_uri = "from-file"\nactor = "file-actor"\n')
        env = {"LOOPLINE_ARTIFACT_URI": "/env/blobs", "LOOPLINE_ACTOR": "env-actor"}
        res = load_settings({"artifact_uri": "/flag/blobs"}, env=env, cwd=tmp_path)
        assert res.settings.artifact_uri == "/flag/blobs"
        assert res.sources["artifact_uri"] == "flag"
        assert res.settings.actor == "env-actor"
        assert res.sources["actor"] == "env LOOPLINE_ACTOR"

    def test_loopline_home_selects_the_workspace_and_its_file(self, tmp_path: Path):
        _write_toml(tmp_path / "ws", 'actor = "ws-actor"\n')
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        res = load_settings({}, env={"LOOPLINE_HOME": str(tmp_path / "ws")}, cwd=elsewhere)
        assert res.settings.home == (tmp_path / "ws").resolve()
        assert res.settings.actor == "ws-actor"
        assert res.sources["home"] == "env LOOPLINE_HOME"

    def test_the_home_flag_beats_loopline_home(self, tmp_path: Path):
        res = load_settings(
            {"home": str(tmp_path / "flag")},
            env={"LOOPLINE_HOME": str(tmp_path / "env")},
            cwd=tmp_path,
        )
        assert res.settings.home == (tmp_path / "flag").resolve()

    def test_tracking_uri_comes_from_env(self, tmp_path: Path):
        env = {"LOOPLINE_TRACKING_URI": "http://127.0.0.1:5000"}
        res = load_settings({}, env=env, cwd=tmp_path)
        assert res.settings.tracking_uri == "http://127.0.0.1:5000"

    def test_a_loopline_table_is_accepted(self, tmp_path: Path):
        _write_toml(tmp_path, '[loopline]\nactor = "tabled"\n')
        assert load_settings({}, env={}, cwd=tmp_path).settings.actor == "tabled"

    def test_none_flags_mean_not_given(self, tmp_path: Path):
        res = load_settings({"store_uri": None}, env={}, cwd=tmp_path)
        assert res.sources["store_uri"] == "default"


class TestBadConfiguration:
    def test_an_unknown_key_in_the_file_names_the_key_and_the_file(self, tmp_path: Path):
        config = _write_toml(tmp_path, 'store_url = "sqlite:///x.db"\n')
        with pytest.raises(ConfigError, match="unknown setting 'store_url'") as info:
            load_settings({}, env={}, cwd=tmp_path)
        assert str(config) in str(info.value)

    def test_invalid_toml_names_the_file(self, tmp_path: Path):
        config = _write_toml(tmp_path, "store_uri = \n")
        with pytest.raises(ConfigError, match="not valid TOML") as info:
            load_settings({}, env={}, cwd=tmp_path)
        assert str(config) in str(info.value)

    def test_a_bad_value_names_the_setting_and_its_source(self, tmp_path: Path):
        env = {"LOOPLINE_GC_GRACE_SECONDS": "soon"}
        with pytest.raises(ConfigError, match=r"'gc_grace_seconds' \(from env") as info:
            load_settings({}, env=env, cwd=tmp_path)
        assert "LOOPLINE_GC_GRACE_SECONDS" in str(info.value)

    def test_a_negative_grace_period_is_refused(self, tmp_path: Path):
        with pytest.raises(ConfigError, match="gc_grace_seconds"):
            load_settings({"gc_grace_seconds": -1}, env={}, cwd=tmp_path)

    def test_an_empty_store_uri_in_the_file_is_refused(self, tmp_path: Path):
        _write_toml(tmp_path, 'store_uri = " "\n')
        with pytest.raises(ConfigError, match="store_uri"):
            load_settings({}, env={}, cwd=tmp_path)

    def test_an_unknown_flag_is_refused(self, tmp_path: Path):
        with pytest.raises(ConfigError, match="unknown setting 'colour'"):
            load_settings({"colour": "blue"}, env={}, cwd=tmp_path)


class TestMasking:
    @pytest.mark.parametrize(
        ("uri", "shown"),
        [
            ("postgresql://bob:hunter2@db:5432/ml", "postgresql://bob:***@db:5432/ml"),
            ("postgresql+psycopg://bob:p%40ss@db/ml", "postgresql+psycopg://bob:***@db/ml"),
            ("postgresql://bob@db/ml", "postgresql://bob@db/ml"),
            ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ],
    )
    def test_passwords_in_uris_are_masked(self, uri: str, shown: str):
        assert mask_uri(uri) == shown

    def test_display_masks_secrets_and_uri_passwords(self, tmp_path: Path):
        settings = Settings.for_home(
            tmp_path,
            store_uri="postgresql://bob:hunter2@db/ml",
            s3_secret_access_key="very-secret",
            s3_access_key_id="AKIAEXAMPLE",
        )
        shown = settings.display()
        assert "hunter2" not in str(shown)
        assert "very-secret" not in str(shown)
        assert "AKIAEXAMPLE" not in str(shown)
        assert shown["s3_secret_access_key"] == "********"

    def test_secrets_do_not_leak_through_repr(self, tmp_path: Path):
        settings = Settings.for_home(tmp_path, s3_secret_access_key="very-secret")
        assert "very-secret" not in repr(settings)
