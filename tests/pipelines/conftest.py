"""A fresh workspace per test, made current; worker processes find it through LOOPLINE_HOME.
The local executor's worker pool is shared by every test of the process, so only the first
test pays for starting interpreters."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopline as ll
from loopline.workspace import Workspace, init_workspace


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    home = tmp_path / "ws"
    workspace = init_workspace(home)
    monkeypatch.setenv("LOOPLINE_HOME", str(home))
    ll.use_workspace(workspace)
    return workspace
