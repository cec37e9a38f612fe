"""User-supplied relative paths: traversal, absolute paths and NUL bytes are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopline.errors import InvalidInput
from loopline.paths import join_inside, safe_relpath


class TestSafeRelpath:
    @pytest.mark.parametrize(
        ("path", "clean"),
        [
            ("a", "a"),
            ("a/b.txt", "a/b.txt"),
            ("a//b/./c", "a/b/c"),
            ("./x", "x"),
            ("dir/", "dir"),
            ("..hidden", "..hidden"),
            ("a/...", "a/..."),
        ],
    )
    def test_accepts_and_normalises_relative_paths(self, path: str, clean: str):
        assert safe_relpath(path) == clean

    @pytest.mark.parametrize(
        ("path", "problem"),
        [
            ("../etc/passwd", "'..'"),
            ("a/../../b", "'..'"),
            ("a/..", "'..'"),
            ("/etc/passwd", "absolute"),
            ("C:/Windows", "absolute"),
            ("c:evil", "absolute"),
            ("a\x00b", "NUL"),
            ("a\\..\\b", "backslash"),
            ("", "non-empty"),
            (".", "names no file"),
            ("x" * 5000, "longer"),
        ],
    )
    def test_rejects_escapes_naming_the_field_and_the_problem(self, path: str, problem: str):
        with pytest.raises(InvalidInput, match=problem) as info:
            safe_relpath(path, "artifact path")
        assert "artifact path" in str(info.value)

    @given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "c.txt", "\x00", "/"]), max_size=8))
    def test_an_accepted_path_never_leaves_its_root(self, parts: list[str]):
        path = "/".join(parts)
        try:
            clean = safe_relpath(path)
        except InvalidInput:
            return
        resolved = os.path.normpath(os.path.join("/root", clean))
        assert resolved.startswith("/root/")
        assert "\x00" not in clean


class TestJoinInside:
    def test_joins_a_safe_path(self, tmp_path: Path):
        assert join_inside(tmp_path, "a/b") == tmp_path.resolve() / "a" / "b"

    def test_refuses_a_symlink_that_leads_outside(self, tmp_path: Path):
        root = tmp_path / "root"
        root.mkdir()
        (root / "link").symlink_to(tmp_path)
        with pytest.raises(InvalidInput, match="outside"):
            join_inside(root, "link/escape.txt")
