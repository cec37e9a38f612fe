"""A process SIGKILLed during ``data add`` leaves no half-registered version: killed while files
are being stored, or after every blob is stored but before the version row commits, the
dataset has no version, every stored blob is intact (no half-written pack is visible), and the
next add works."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loopline.config import Settings
from loopline.errors import NotFound
from loopline.workspace import Workspace
from tests.processes import Children, wait_until

FILES = 200
FILE_SIZE = 64 * 1024


def add_and_hang(home: str, source: str, marker: str, where: str) -> None:
    """Run ``data add`` and hang (until killed) mid-way: ``where`` is "storing" (after a few
    files' bytes went to the blob store) or "recording" (every blob stored, the version row
    about to be written)."""
    from loopline.store.sql_data import SqlDataStore

    def hang() -> None:
        Path(marker).touch()
        time.sleep(600)

    seen = [0]

    def progress(n: int) -> None:
        seen[0] += n
        if where == "storing" and seen[0] > 10 * FILE_SIZE:
            hang()

    if where == "recording":
        SqlDataStore.add_version = lambda *a, **k: hang()  # type: ignore[method-assign]
    ws = Workspace(Settings.for_home(home, actor="doomed"))
    ws.data.add(source, "big", progress=progress)
    raise SystemExit("the add completed, but it should have hung until killed")


@pytest.mark.parametrize("where", ["storing", "recording"])
def test_a_killed_add_leaves_no_version_and_can_be_redone(tmp_path: Path, where: str) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for i in range(FILES):
        (source / f"part-{i:04d}.bin").write_bytes(bytes([i % 251]) * FILE_SIZE)
    home = tmp_path / "ws"
    Workspace(Settings.for_home(home)).close()  # created and migrated before the child starts
    marker = tmp_path / "marker"
    with Children(tmp_path / "logs") as children:
        child = children.start(
            "tests.data.test_add_crash:add_and_hang", str(home), str(source), str(marker), where
        )
        wait_until(marker.exists, what="the add to get under way", timeout=60, watch=[child])
        child.kill()
    ws = Workspace(Settings.for_home(home))
    try:
        with pytest.raises(NotFound):
            ws.data.versions("big")
        assert all(ws.blobs.verify(d) for d in ws.blobs.iter_digests())
        packs = list((home / ".loopline" / "artifacts" / "packs").glob("*.pack"))
        if where == "storing":  # the batch's pack was still being written: never published
            assert packs == []
        else:  # every blob was stored: the packs are complete, their blobs verified above
            assert packs
        redone = ws.data.add(source, "big")
        assert (redone.created, redone.version.ref, redone.version.file_count) == (
            True,
            "big@1",
            FILES,
        )
        out = ws.data.checkout("big@1", tmp_path / "out")
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in source.iterdir())
    finally:
        ws.close()
