"""Dataset versions on every metadata store (SQLite, PostgreSQL) and blob store (local, S3):
immutable, deduplicated, addressed by number, ``latest`` or digest, checked out verified."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopline.config import Settings
from loopline.data.service import DataService
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.workspace import Workspace

OLD = 1_600_000_000  # a modification time long past: the hash index trusts such files


@pytest.fixture
def workspace(store_uri: str, blob_settings: dict[str, Any], tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(
        Settings.for_home(tmp_path / "ws", store_uri=store_uri, actor="ada", **blob_settings)
    )
    yield ws
    ws.close()


@pytest.fixture
def data(workspace: Workspace) -> DataService:
    return workspace.data


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, (OLD, OLD))
    return root


def _read(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


FILES = {"a.csv": b"x,y\n1,2\n", "images/cat.png": b"\x89PNG cat", "images/dog.png": b"\x89PNG dog"}


def test_unchanged_content_makes_no_version_and_changed_content_the_next(
    data: DataService, tmp_path: Path
) -> None:
    tree = _tree(tmp_path / "tree", FILES)
    first = data.add(tree, "pets")
    again = data.add(tree, "pets")
    (tree / "images" / "dog.png").write_bytes(b"\x89PNG a different dog")
    (tree / "notes.txt").write_bytes(b"new")
    second = data.add(tree, "pets", message="new dog")
    assert (first.created, first.version.ref, first.hashed) == (True, "pets@1", 3)
    assert (again.created, again.version) == (False, first.version)
    assert (second.created, second.version.ref, second.version.message) == (
        True,
        "pets@2",
        "new dog",
    )
    assert second.version.file_count == 4
    assert second.version.total_size == sum(len(v) for v in _read(tree).values())
    old = data.checkout("pets@1", tmp_path / "v1")
    assert _read(old) == FILES  # the old version is untouched, byte for byte
    diff = data.diff("pets@1", "pets@2")
    assert diff["files"] == {
        "added": ["notes.txt"],
        "removed": [],
        "modified": ["images/dog.png"],
        "unchanged": 2,
    }


def test_a_re_add_reads_only_the_files_that_changed(data: DataService, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree", FILES)
    time.sleep(1.1)  # files changed within the last second are never trusted to the index
    data.add(tree, "pets")
    unchanged = data.add(tree, "pets")
    # The same size and the old modification time, but a new change time: still noticed.
    _tree(tree, {"images/cat.png": b"\x89PNG CAT"})
    edited = data.add(tree, "pets")
    assert (unchanged.created, unchanged.hashed, unchanged.reused) == (False, 0, 3)
    assert (edited.created, edited.hashed, edited.reused) == (True, 1, 2)
    assert data.diff("pets@1", "pets@2")["files"]["modified"] == ["images/cat.png"]


def test_versions_are_addressed_by_number_latest_or_digest(
    data: DataService, tmp_path: Path
) -> None:
    tree = _tree(tmp_path / "tree", FILES)
    v1 = data.add(tree, "pets").version
    _tree(tree, {"a.csv": b"x,y\n3,4\n"})
    v2 = data.add(tree, "pets").version
    assert data.resolve("pets@1") == v1
    assert data.resolve("pets@latest") == v2 == data.resolve("pets")
    assert data.resolve(v1.digest) == v1
    assert [v.ref for v in data.versions("pets")] == ["pets@2", "pets@1"]
    assert [(d.name, d.latest_version, d.version_count) for d in data.list_datasets()] == [
        ("pets", 2, 2)
    ]
    with pytest.raises(NotFound, match="has no version 7"):
        data.resolve("pets@7")
    with pytest.raises(NotFound, match="dataset 'cats' not found"):
        data.resolve("cats@1")
    with pytest.raises(NotFound, match="no dataset version has manifest digest"):
        data.resolve("0" * 64)
    for bad in ("pets@0", "pets@two", "bad name@1", "", "../x@1"):
        with pytest.raises(InvalidInput):
            data.resolve(bad)


def test_edits_to_sources_or_checkouts_never_reach_stored_bytes(
    data: DataService, workspace: Workspace, tmp_path: Path
) -> None:
    tree = _tree(tmp_path / "tree", FILES)
    version = data.add(tree, "pets").version
    with (tree / "a.csv").open("r+b") as fh:  # an in-place edit of the added file
        fh.write(b"X")
    checkout = data.checkout(version, tmp_path / "co")
    with (checkout / "images" / "cat.png").open("r+b") as fh:  # and of a checked-out one
        fh.write(b"!!!!")
    again = data.checkout(version, tmp_path / "again")
    assert _read(again) == FILES
    assert all(workspace.blobs.verify(e.digest) for e in data.manifest(version).entries)
    with pytest.raises(AlreadyExists, match="not empty"):
        data.checkout(version, checkout)


def test_identical_files_are_stored_once_across_versions_and_datasets(
    data: DataService, workspace: Workspace, tmp_path: Path
) -> None:
    tree = _tree(tmp_path / "tree", FILES)
    copy = _tree(tmp_path / "copy", {**FILES, "extra/cat-again.png": FILES["images/cat.png"]})
    data.add(tree, "pets")
    data.add(copy, "pets-copy")
    stored = set(workspace.blobs.iter_digests())
    wanted = {e.digest for ref in ("pets@1", "pets-copy@1") for e in data.manifest(ref).entries}
    assert len(wanted) == 3 and wanted <= stored
    assert len(stored) == 3 + 2  # the files once each, plus the two manifests


def test_files_globs_and_single_files(data: DataService, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree", FILES)
    by_glob = data.add(str(tree / "images" / "*.png"), "images").version
    single = data.add(tree / "a.csv", "raw-csv", as_table=False).version
    assert [e.path for e in data.manifest(by_glob).entries] == ["cat.png", "dog.png"]
    assert [e.path for e in data.manifest(single).entries] == ["a.csv"]
    with pytest.raises(NotFound, match="matches no files"):
        data.add(str(tree / "*.parquet"), "nothing")
    with pytest.raises(NotFound, match="not a file, a directory"):
        data.add(tmp_path / "missing", "nothing")
    with pytest.raises(InvalidInput, match="dataset name"):
        data.add(tree, "no/slashes")


def test_deleted_versions_are_gone_and_numbers_are_not_reused(
    data: DataService, tmp_path: Path
) -> None:
    tree = _tree(tmp_path / "tree", FILES)
    data.add(tree, "pets")
    _tree(tree, {"b.txt": b"b"})
    data.add(tree, "pets")
    data.delete("pets", 2)
    with pytest.raises(NotFound):
        data.resolve("pets@2")
    _tree(tree, {"c.txt": b"c"})
    assert data.add(tree, "pets").version.ref == "pets@3"
    data.delete("pets")
    with pytest.raises(NotFound):
        data.versions("pets")


def test_tables_are_stored_as_canonical_parquet_with_schema_profile_and_validation(
    data: DataService, tmp_path: Path
) -> None:
    import pandas as pd

    frame = pd.DataFrame({"id": [1, 2, 3, 4], "amount": [10.0, None, 30.0, 40.0]})
    first = data.log_table(frame, "tx")
    again = data.log_table(frame.copy(), "tx")
    changed = frame.assign(amount=[10.0, 20.0, 30.0, -1.0])
    second = data.log_table(pd.concat([changed, pd.DataFrame({"id": [5], "amount": [50.0]})]), "tx")
    v1 = first.version
    assert (first.created, again.created, v1.kind, v1.row_count) == (True, False, "table", 4)
    assert v1.schema == [
        {"name": "id", "type": "int64", "nullable": True},
        {"name": "amount", "type": "double", "nullable": True},
    ]
    profile = data.profile("tx@1")
    assert profile is not None
    assert (profile["row_count"], profile["columns"]["amount"]["nulls"]) == (4, 1)
    assert data.load("tx@1").equals(frame)
    suite = data.infer_expectations("tx@1")
    assert data.validate("tx@1", suite).success
    report = data.validate(second.version, suite)
    assert not report.success
    assert "value_range(amount)" in {r.name for r in report.failures}
    diff = data.diff("tx@1", "tx@2", key=["id"])
    assert diff["table"]["row_count"] == {"old": 4, "new": 5, "change": 1}
    assert (diff["table"]["rows"]["added"], diff["table"]["rows"]["changed"]) == (1, 2)
    with pytest.raises(InvalidInput, match="both versions must be tables"):
        data.add(_tree(tmp_path / "t", FILES), "files")
        data.diff("files@1", "tx@1", key=["id"])


def test_garbage_collection_keeps_every_file_a_version_lists_and_frees_deleted_ones(
    data: DataService, workspace: Workspace, tmp_path: Path
) -> None:
    tree = _tree(tmp_path / "tree", FILES)
    data.add(tree, "pets")
    _tree(tree, {"b.txt": b"only in version 2"})
    data.add(tree, "pets")
    workspace.gc(grace_seconds=0)
    assert _read(data.checkout("pets@1", tmp_path / "v1")) == FILES
    only_v2 = next(e.digest for e in data.manifest("pets@2").entries if e.path == "b.txt")
    data.delete("pets", 2)
    report = workspace.gc(grace_seconds=0)
    assert report.deleted == 2  # version 2's manifest and the file only it held
    assert not workspace.blobs.exists(only_v2)
    assert _read(data.checkout("pets@1", tmp_path / "again")) == FILES
