"""Garbage collection against each blob backend: referenced blobs (and the files a referenced
manifest lists) survive, young blobs survive, old unreferenced blobs go."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from loopline.blobs.cas import BlobStore
from loopline.blobs.gc import collect
from loopline.config import Settings
from loopline.entities import BlobRef, Ref
from loopline.workspace import Workspace

LATER = 10_000.0  # seconds: "now" far enough ahead that every blob counts as old


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "one.txt").write_text("one")
    (root / "sub" / "two.txt").write_text("two")
    return root


class TestCollect:
    def test_only_unreferenced_old_blobs_are_deleted(self, blobs: BlobStore):
        kept = blobs.put_bytes(b"referenced")
        dropped = blobs.put_bytes(b"garbage")
        report = collect(blobs, [(kept, "file")], grace_seconds=60, now=time.time() + LATER)
        assert (report.live, report.deleted, report.deleted_bytes) == (1, 1, len(b"garbage"))
        assert blobs.exists(kept)
        assert not blobs.exists(dropped)

    def test_blobs_inside_the_grace_period_are_spared(self, blobs: BlobStore):
        young = blobs.put_bytes(b"just written, row not committed yet")
        report = collect(blobs, [], grace_seconds=3600)
        assert (report.young, report.deleted) == (1, 0)
        assert blobs.exists(young)

    def test_a_referenced_manifest_keeps_its_files(self, blobs: BlobStore, tmp_path: Path):
        manifest = blobs.put_dir(_tree(tmp_path / "d"))
        files = [e.digest for e in blobs.read_manifest(manifest).entries]
        stray = blobs.put_bytes(b"stray")
        report = collect(blobs, [(manifest, "manifest")], grace_seconds=0, now=time.time() + LATER)
        assert report.deleted == 1
        assert all(blobs.exists(d) for d in [manifest, *files])
        assert not blobs.exists(stray)

    def test_a_manifest_referenced_as_a_plain_file_does_not_protect_its_files(
        self, blobs: BlobStore, tmp_path: Path
    ):
        manifest = blobs.put_dir(_tree(tmp_path / "d"))
        report = collect(blobs, [(manifest, "file")], grace_seconds=0, now=time.time() + LATER)
        assert report.deleted == 2
        assert blobs.exists(manifest)

    def test_dry_run_deletes_nothing_but_reports_the_same(self, blobs: BlobStore):
        digest = blobs.put_bytes(b"garbage")
        report = collect(blobs, [], grace_seconds=0, dry_run=True, now=time.time() + LATER)
        assert (report.deleted, report.dry_run) == (1, True)
        assert blobs.exists(digest)

    def test_references_to_lost_blobs_are_reported(self, blobs: BlobStore):
        lost = "ab" * 32
        report = collect(blobs, [(lost, "file")], grace_seconds=0, now=time.time() + LATER)
        assert report.missing == [lost]


class TestWorkspaceGc:
    @pytest.fixture
    def workspace(self, blob_settings: dict[str, Any], tmp_path: Path) -> Workspace:
        ws = Workspace(Settings.for_home(tmp_path / "ws", **blob_settings))
        yield ws
        ws.close()

    def test_refs_in_the_metadata_store_decide_what_lives(self, workspace: Workspace):
        kept = workspace.blobs.put_bytes(b"model weights")
        dropped = workspace.blobs.put_bytes(b"old scratch")
        workspace.store.add_blob_refs([BlobRef(kept, Ref("model_version", "m/1"))])
        report = workspace.gc(grace_seconds=0)
        assert (report.live, report.deleted) == (1, 1)
        assert workspace.blobs.exists(kept) and not workspace.blobs.exists(dropped)
        events = workspace.events.list(action="blobs.gc")
        assert [e.details["deleted"] for e in events] == [1]

    def test_removing_the_owner_lets_gc_reclaim_the_blob(self, workspace: Workspace):
        digest = workspace.blobs.put_bytes(b"run artifact")
        owner = Ref("run", "r1")
        workspace.store.add_blob_refs([BlobRef(digest, owner)])
        assert workspace.gc(grace_seconds=0).deleted == 0
        workspace.store.remove_blob_refs(owner)
        assert workspace.gc(grace_seconds=0).deleted == 1
        assert not workspace.blobs.exists(digest)

    def test_the_default_grace_period_spares_fresh_blobs(self, workspace: Workspace):
        digest = workspace.blobs.put_bytes(b"fresh")
        assert workspace.gc().young == 1
        assert workspace.blobs.exists(digest)


class TestPackedBlobs:
    """Blobs stored by a batch (packed on local stores) are collected like loose ones."""

    def _batch(self, blobs: BlobStore, root: Path, contents: list[bytes]) -> list[str]:
        root.mkdir(parents=True, exist_ok=True)
        for i, content in enumerate(contents):
            (root / f"f{i}").write_bytes(content)
        with blobs.batch() as batch:
            return [batch.put_file(root / f"f{i}") for i in range(len(contents))]

    def test_dead_packed_blobs_go_and_their_live_neighbours_stay_readable(
        self, blobs: BlobStore, tmp_path: Path
    ):
        contents = [f"packed blob {i}".encode() * 50 for i in range(6)]
        digests = self._batch(blobs, tmp_path / "src", contents)
        live = digests[::2]
        report = collect(
            blobs, [(d, "file") for d in live], grace_seconds=60, now=time.time() + LATER
        )
        assert (report.live, report.deleted) == (3, 3)
        assert report.deleted_bytes == sum(len(c) for c in contents[1::2])
        assert [blobs.read_bytes(d) for d in live] == contents[::2]
        assert not any(blobs.exists(d) for d in digests[1::2])
        assert set(blobs.iter_digests()) == set(live)
        again = collect(
            blobs, [(d, "file") for d in live], grace_seconds=0, now=time.time() + LATER
        )
        assert (again.live, again.deleted) == (3, 0)

    def test_a_young_pack_is_spared_whole(self, blobs: BlobStore, tmp_path: Path):
        digests = self._batch(blobs, tmp_path / "src", [b"new one", b"new two"])
        report = collect(blobs, [], grace_seconds=3600)
        assert (report.young, report.deleted) == (2, 0)
        assert all(blobs.exists(d) for d in digests)

    def test_a_dry_run_rewrites_no_pack(self, blobs: BlobStore, tmp_path: Path):
        digests = self._batch(blobs, tmp_path / "src", [b"keep", b"drop"])
        packs = (
            sorted(Path(blobs.uri, "packs").glob("*.pack")) if blobs.backend.supports_packs else []
        )
        report = collect(
            blobs, [(digests[0], "file")], grace_seconds=0, dry_run=True, now=time.time() + LATER
        )
        assert report.deleted == 1 and all(blobs.exists(d) for d in digests)
        if packs:
            assert sorted(Path(blobs.uri, "packs").glob("*.pack")) == packs
