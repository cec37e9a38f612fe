"""The public Python API is exactly what docs/api.md documents."""

from __future__ import annotations

import re
from pathlib import Path

import loopline
from loopline import errors

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_public_names_are_exactly_the_documented_ones():
    documented = set(re.findall(r"^### `loopline\.(\w+)`", API_DOC.read_text(), re.M))
    assert set(loopline.__all__) == documented
    assert all(hasattr(loopline, name) for name in documented)


def test_all_is_sorted_so_additions_are_deliberate():
    assert loopline.__all__ == sorted(loopline.__all__)


def test_every_error_class_is_exported_and_derives_from_the_base():
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, loopline.LooplineError)
            assert getattr(loopline, name) is obj


def test_wire_codes_map_back_to_their_classes_and_unknown_codes_to_the_base():
    for cls in (loopline.NotFound, loopline.InvalidInput, loopline.IntegrityError):
        assert errors.error_for_code(cls.code) is cls
    assert errors.error_for_code("SomeModule.EvilClass") is loopline.LooplineError


def test_error_classes_keep_their_builtin_meaning():
    assert issubclass(loopline.NotFound, LookupError)
    assert issubclass(loopline.InvalidInput, ValueError)
    assert issubclass(loopline.ConfigError, loopline.InvalidInput)
    assert loopline.AlreadyExists.http_status == 400


def test_the_recorded_schema_head_is_the_newest_migration():
    from loopline.store import migrate

    assert migrate.alembic_head() == migrate.HEAD
