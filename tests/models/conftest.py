"""Fixtures shared by the model tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import loopline as ll
from loopline.config import Settings
from loopline.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh embedded workspace, current for the test (``ll.*`` calls act on it)."""
    ws = Workspace(Settings.for_home(tmp_path / "ws", actor="tester"))
    with ll.use_workspace(ws):
        yield ws
    ll.use_workspace(None)
    ws.close()
