"""Dataset versions whose small files are packed (a local blob store): still immutable, and
checked out as independent copies, never as links into a pack."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline.config import Settings
from loopline.workspace import Workspace
from tests.contract.test_datasets import OLD
from tests.contract.test_datasets import _tree as write_tree


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(Settings.for_home(tmp_path / "ws"))
    yield ws
    ws.close()


def _tree(root: Path, count: int = 30) -> dict[str, bytes]:
    files = {f"d{i % 3}/f{i:02d}.bin": os.urandom(1000 + i) for i in range(count)}
    write_tree(root, files)
    return files


def test_a_directory_of_small_files_becomes_one_pack(workspace: Workspace, tmp_path: Path):
    _tree(tmp_path / "tree")
    workspace.data.add(tmp_path / "tree", "small")
    artifacts = Path(workspace.blobs.uri)
    # One pack per worker thread, whichever threads got work: a handful, not 30 files.
    assert 1 <= len(list((artifacts / "packs").glob("*.pack"))) <= max(2, os.cpu_count() or 1)
    loose = [p for p in artifacts.glob("??/*") if p.is_file()]
    assert len(loose) == 1  # the manifest, written on its own


def test_checkouts_are_copies_and_edits_never_reach_the_packed_bytes(
    workspace: Workspace, tmp_path: Path
):
    files = _tree(tmp_path / "tree")
    version = workspace.data.add(tmp_path / "tree", "small").version
    with (tmp_path / "tree" / "d0" / "f00.bin").open("r+b") as fh:  # edit the source in place
        fh.write(b"edited")
    out = workspace.data.checkout(version, tmp_path / "co")
    packs = {p.stat().st_ino for p in (Path(workspace.blobs.uri) / "packs").glob("*.pack")}
    for rel in files:
        st = (out / rel).stat()
        assert st.st_nlink == 1 and st.st_ino not in packs
    (out / "d1" / "f01.bin").write_bytes(b"overwritten in the checkout")
    again = workspace.data.checkout(version, tmp_path / "again")
    assert {rel: (again / rel).read_bytes() for rel in files} == files
    assert all(workspace.blobs.verify(e.digest) for e in workspace.data.manifest(version).entries)


def test_a_re_add_packs_only_the_changed_files_and_gc_keeps_both_versions_whole(
    workspace: Workspace, tmp_path: Path
):
    files = _tree(tmp_path / "tree")
    workspace.data.add(tmp_path / "tree", "small")
    packs = set((Path(workspace.blobs.uri) / "packs").glob("*.pack"))
    changed = tmp_path / "tree" / "d2" / "f02.bin"
    changed.write_bytes(b"new content")
    os.utime(changed, (OLD + 10, OLD + 10))
    result = workspace.data.add(tmp_path / "tree", "small")
    assert (result.version.ref, result.hashed) == ("small@2", 1)
    assert len(set((Path(workspace.blobs.uri) / "packs").glob("*.pack")) - packs) == 1
    workspace.data.delete("small", 1)
    report = workspace.gc(grace_seconds=0)
    assert report.deleted == 2  # version 1's manifest and the old content of f02
    out = workspace.data.checkout("small@2", tmp_path / "co")
    assert {rel: (out / rel).read_bytes() for rel in files} == {
        **files,
        "d2/f02.bin": b"new content",
    }
