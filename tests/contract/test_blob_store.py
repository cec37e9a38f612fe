"""The blob store contract, run against the local directory backend and a real S3 server."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import blake3
import pytest

from loopline.blobs.cas import BlobStore, Manifest, hash_bytes
from loopline.errors import IntegrityError, InvalidInput, NotFound


def _corrupt(blobs: BlobStore, digest: str, settings: dict[str, Any], seaweedfs_fs: Any) -> None:
    """Flip one byte of the stored blob behind Loopline's back."""
    key = f"{digest[:2]}/{digest[2:]}"
    if settings["artifact_uri"].startswith("s3://"):
        path = f"{blobs.backend.root}/{key}"  # type: ignore[attr-defined]
        data = bytearray(seaweedfs_fs.cat_file(path))
        data[len(data) // 2] ^= 0x01
        seaweedfs_fs.pipe_file(path, bytes(data))
    else:
        path = Path(settings["artifact_uri"]) / key
        os.chmod(path, 0o644)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))


@pytest.fixture
def raw_fs(blob_settings: dict[str, Any], request: pytest.FixtureRequest) -> Any:
    if blob_settings["artifact_uri"].startswith("s3://"):
        return request.getfixturevalue("seaweedfs").filesystem()
    return None


class TestPutAndRead:
    def test_put_bytes_returns_the_blake3_hex_digest_and_reads_back(self, blobs: BlobStore):
        """A digest is the lowercase hex BLAKE3 of the content."""
        digest = blobs.put_bytes(b"hello loopline")
        assert digest == blake3.blake3(b"hello loopline").hexdigest()
        assert blobs.read_bytes(digest) == b"hello loopline"
        assert blobs.exists(digest)

    def test_empty_content_is_a_valid_blob(self, blobs: BlobStore):
        digest = blobs.put_bytes(b"")
        assert blobs.read_bytes(digest) == b""
        assert blobs.stat(digest).size == 0

    def test_put_file_and_put_stream_agree_on_multi_chunk_content(
        self, blobs: BlobStore, tmp_path: Path
    ):
        """Content larger than one chunk hashes identically whichever way it arrives."""
        data = os.urandom(9 * 1024 * 1024 + 17)
        source = tmp_path / "big.bin"
        source.write_bytes(data)
        by_file = blobs.put_file(source)
        by_stream = blobs.put_stream(io.BytesIO(data))
        assert by_file == by_stream == hash_bytes(data)
        assert blobs.stat(by_file).size == len(data)
        out = blobs.get_to_path(by_file, tmp_path / "out" / "copy.bin")
        assert out.read_bytes() == data

    def test_identical_content_is_stored_once(self, blobs: BlobStore, tmp_path: Path):
        first = blobs.put_bytes(b"same bytes")
        (tmp_path / "f").write_bytes(b"same bytes")
        second = blobs.put_file(tmp_path / "f")
        assert first == second
        assert list(blobs.iter_digests()) == [first]

    def test_progress_callback_counts_every_byte(self, blobs: BlobStore, tmp_path: Path):
        data = os.urandom(5 * 1024 * 1024)
        (tmp_path / "p").write_bytes(data)
        seen: list[int] = []
        blobs.put_file(tmp_path / "p", seen.append)
        assert sum(seen) == len(data)

    def test_open_streams_in_chunks(self, blobs: BlobStore):
        data = os.urandom(3 * 1024 * 1024)
        digest = blobs.put_bytes(data)
        with blobs.open(digest) as fh:
            head = fh.read(1000)
            rest = fh.read()
        assert head + rest == data


class TestMissingAndMalformed:
    def test_reading_a_missing_blob_raises_not_found(self, blobs: BlobStore, tmp_path: Path):
        missing = hash_bytes(b"never stored")
        assert not blobs.exists(missing)
        with pytest.raises(NotFound, match=missing):
            blobs.read_bytes(missing)
        with pytest.raises(NotFound):
            blobs.get_to_path(missing, tmp_path / "x")
        assert not (tmp_path / "x").exists()

    @pytest.mark.parametrize("bad", ["", "abc", "Z" * 64, "../" + "a" * 61, "A" * 64])
    def test_malformed_digests_are_rejected_before_any_io(self, blobs: BlobStore, bad: str):
        with pytest.raises(InvalidInput, match="not a blob digest"):
            blobs.exists(bad)

    def test_put_file_of_a_missing_path_raises_not_found(self, blobs: BlobStore, tmp_path: Path):
        with pytest.raises(NotFound, match="does not exist"):
            blobs.put_file(tmp_path / "nope")

    def test_delete_removes_and_reports(self, blobs: BlobStore):
        digest = blobs.put_bytes(b"to delete")
        assert blobs.delete(digest) is True
        assert blobs.delete(digest) is False
        assert not blobs.exists(digest)


class TestIntegrity:
    def test_a_flipped_byte_is_detected_on_read(
        self, blobs: BlobStore, blob_settings: dict[str, Any], raw_fs: Any
    ):
        digest = blobs.put_bytes(b"precious model weights" * 1000)
        _corrupt(blobs, digest, blob_settings, raw_fs)
        with pytest.raises(IntegrityError, match=digest):
            blobs.read_bytes(digest)
        assert blobs.verify(digest) is False

    def test_get_to_path_leaves_the_destination_untouched_on_corruption(
        self, blobs: BlobStore, blob_settings: dict[str, Any], raw_fs: Any, tmp_path: Path
    ):
        digest = blobs.put_bytes(os.urandom(100_000))
        _corrupt(blobs, digest, blob_settings, raw_fs)
        dest = tmp_path / "model.bin"
        dest.write_bytes(b"previous good copy")
        with pytest.raises(IntegrityError):
            blobs.get_to_path(digest, dest)
        assert dest.read_bytes() == b"previous good copy"
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".model")] == []

    def test_intact_blobs_verify(self, blobs: BlobStore):
        assert blobs.verify(blobs.put_bytes(b"fine")) is True


class TestDirectories:
    def _tree(self, root: Path) -> None:
        (root / "sub" / "deeper").mkdir(parents=True)
        (root / "a.txt").write_text("alpha")
        (root / "sub" / "b.bin").write_bytes(os.urandom(2048))
        (root / "sub" / "deeper" / "c.txt").write_text("gamma")
        (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
        (root / "run.sh").chmod(0o755)

    def test_put_dir_round_trips_content_and_exec_bit(self, blobs: BlobStore, tmp_path: Path):
        src = tmp_path / "src"
        self._tree(src)
        manifest_digest = blobs.put_dir(src)
        manifest = blobs.read_manifest(manifest_digest)
        assert [e.path for e in manifest.entries] == [
            "a.txt",
            "run.sh",
            "sub/b.bin",
            "sub/deeper/c.txt",
        ]
        out = blobs.get_dir(manifest_digest, tmp_path / "out")
        for rel in ("a.txt", "run.sh", "sub/b.bin", "sub/deeper/c.txt"):
            assert (out / rel).read_bytes() == (src / rel).read_bytes()
        assert os.access(out / "run.sh", os.X_OK)
        assert not os.access(out / "a.txt", os.X_OK)

    def test_same_tree_gives_same_manifest_digest(self, blobs: BlobStore, tmp_path: Path):
        self._tree(tmp_path / "one")
        (tmp_path / "two").mkdir()
        for path in sorted((tmp_path / "one").rglob("*")):
            target = tmp_path / "two" / path.relative_to(tmp_path / "one")
            if path.is_dir():
                target.mkdir(exist_ok=True)
            else:
                target.write_bytes(path.read_bytes())
                target.chmod(path.stat().st_mode)
        assert blobs.put_dir(tmp_path / "one") == blobs.put_dir(tmp_path / "two")

    @pytest.mark.parametrize(
        "evil", ["../escape.txt", "/etc/passwd", "a/../../b", "x\x00y", "C:/windows", "a\\..\\b"]
    )
    def test_a_crafted_manifest_cannot_write_outside_the_destination(
        self, blobs: BlobStore, tmp_path: Path, evil: str
    ):
        content = blobs.put_bytes(b"payload")
        doc = {
            "loopline_manifest": 1,
            "files": [{"path": evil, "digest": content, "size": 7, "executable": False}],
        }
        manifest = blobs.put_bytes(json.dumps(doc).encode())
        with pytest.raises(InvalidInput):
            blobs.get_dir(manifest, tmp_path / "dest")
        assert not (tmp_path / "escape.txt").exists()

    def test_a_blob_that_is_not_a_manifest_is_rejected(self, blobs: BlobStore):
        with pytest.raises(InvalidInput, match="not a valid directory manifest"):
            blobs.read_manifest(blobs.put_bytes(b"just bytes"))

    def test_manifest_bytes_round_trip(self, blobs: BlobStore, tmp_path: Path):
        self._tree(tmp_path / "t")
        manifest = blobs.read_manifest(blobs.put_dir(tmp_path / "t"))
        assert Manifest.from_bytes(manifest.to_bytes()) == manifest
        assert manifest.total_size == sum(e.size for e in manifest.entries)


class TestListing:
    def test_iter_digests_lists_exactly_the_stored_blobs(self, blobs: BlobStore):
        stored = {blobs.put_bytes(f"blob {i}".encode()) for i in range(25)}
        assert set(blobs.iter_digests()) == stored
        sizes = {o.key.replace("/", ""): o.size for o in blobs.iter_stored()}
        assert all(sizes[d] == len(blobs.read_bytes(d)) for d in stored)


def _pack_files(blobs: BlobStore) -> list[Path]:
    """The published pack files of a local store (none on S3, which never packs)."""
    if not blobs.backend.supports_packs:
        return []
    return sorted(Path(blobs.uri, "packs").glob("*.pack"))


def _loose_files(blobs: BlobStore) -> list[Path]:
    return [p for p in Path(blobs.uri).glob("??/*") if p.is_file()]


class TestBatches:
    """A batch stores many files as one unit; on stores with packs, small ones share a pack."""

    def _one_pack(self, blobs: BlobStore, tmp_path: Path) -> tuple[list[Path], list[str], Path]:
        """Three small files stored in one batch: their paths, digests and the one pack."""
        paths = self._files(tmp_path / "src", 3)
        with blobs.batch() as batch:
            digests = [batch.put_file(p) for p in paths]
        (pack,) = _pack_files(blobs)
        return paths, digests, pack

    def _files(self, root: Path, count: int, size: int = 3000) -> list[Path]:
        root.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(count):
            path = root / f"f{i:03d}.bin"
            path.write_bytes(os.urandom(size))
            paths.append(path)
        return paths

    def test_small_files_are_packed_and_read_back_verified(self, blobs: BlobStore, tmp_path: Path):
        """Every file reads back byte for byte with its size; a local store holds them in one
        pack (one file, not one per blob); S3 stores them as before, one object each."""
        paths = self._files(tmp_path / "src", 40)
        with blobs.batch() as batch:
            digests = [batch.put_file(p) for p in paths]
        for path, digest in zip(paths, digests, strict=True):
            assert digest == hash_bytes(path.read_bytes())
            assert blobs.read_bytes(digest) == path.read_bytes()
            assert blobs.stat(digest).size == path.stat().st_size
            assert blobs.verify(digest)
        assert set(blobs.iter_digests()) == set(digests)
        if blobs.backend.supports_packs:
            assert len(_pack_files(blobs)) == 1 and _loose_files(blobs) == []

    def test_packed_blobs_are_invisible_until_commit_and_gone_after_abort(
        self, blobs: BlobStore, tmp_path: Path
    ):
        paths = self._files(tmp_path / "src", 5)
        batch = blobs.batch()
        digests = [batch.put_file(p) for p in paths]
        if blobs.backend.supports_packs:
            assert not any(blobs.exists(d) for d in digests)
            assert _pack_files(blobs) == []
        batch.abort()
        if blobs.backend.supports_packs:
            assert list(blobs.iter_digests()) == []
            assert [p for p in Path(blobs.uri, ".staging").rglob("*") if p.is_file()] == []

    def test_content_already_stored_or_repeated_is_kept_once(
        self, blobs: BlobStore, tmp_path: Path
    ):
        (tmp_path / "a").write_bytes(b"same" * 100)
        (tmp_path / "b").write_bytes(b"same" * 100)
        (tmp_path / "c").write_bytes(b"loose already")
        loose = blobs.put_bytes(b"loose already")
        with blobs.batch() as batch:
            first, second, third = (batch.put_file(tmp_path / n) for n in "abc")
        assert first == second and third == loose
        assert sorted(blobs.iter_digests()) == sorted({first, loose})
        if blobs.backend.supports_packs:
            (pack,) = _pack_files(blobs)
            assert pack.stat().st_size < 2 * 400 + 200  # one copy of "same"*100, plus framing

    def test_large_files_stay_loose(self, blobs: BlobStore, tmp_path: Path):
        from loopline.blobs.cas import PACK_MAX_BLOB

        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(PACK_MAX_BLOB))
        with blobs.batch() as batch:
            digest = batch.put_file(big)
        assert blobs.read_bytes(digest) == big.read_bytes()
        assert _pack_files(blobs) == []

    def test_a_damaged_packed_blob_is_reported_and_its_neighbours_still_read(
        self, blobs: BlobStore, tmp_path: Path
    ):
        if not blobs.backend.supports_packs:
            pytest.skip("this store keeps every blob as its own object")
        from loopline.blobs.packs import read_index

        paths, digests, pack = self._one_pack(blobs, tmp_path)
        victim = next(e for e in read_index(pack) if e.key.replace("/", "") == digests[1])
        pack.chmod(0o644)
        with pack.open("r+b") as fh:
            fh.seek(victim.offset + 10)
            byte = fh.read(1)
            fh.seek(victim.offset + 10)
            fh.write(bytes([byte[0] ^ 1]))
        with pytest.raises(IntegrityError, match=digests[1]):
            blobs.read_bytes(digests[1])
        assert blobs.verify(digests[1]) is False
        assert blobs.read_bytes(digests[0]) == paths[0].read_bytes()
        assert blobs.read_bytes(digests[2]) == paths[2].read_bytes()

    def test_a_pack_with_a_damaged_index_reads_as_missing_not_as_wrong_bytes(
        self, blobs: BlobStore, tmp_path: Path
    ):
        if not blobs.backend.supports_packs:
            pytest.skip("this store keeps every blob as its own object")
        _, digests, pack = self._one_pack(blobs, tmp_path)
        pack.chmod(0o644)
        data = bytearray(pack.read_bytes())
        data[-60] ^= 1  # inside the index
        pack.write_bytes(bytes(data))
        fresh = BlobStore(type(blobs.backend)(blobs.uri))
        with pytest.raises(NotFound):
            fresh.read_bytes(digests[0])

    def test_a_pack_published_by_another_process_is_seen_at_once(
        self, blobs: BlobStore, tmp_path: Path
    ):
        """A reader that listed the packs a moment ago still finds a pack published since
        (the listing is not trusted within the directory's timestamp granularity)."""
        if not blobs.backend.supports_packs:
            pytest.skip("this store keeps every blob as its own object")
        reader = BlobStore(type(blobs.backend)(blobs.uri))
        with blobs.batch() as batch:
            batch.put_file(self._files(tmp_path / "one", 1)[0])
        assert len(list(reader.iter_digests())) == 1
        for i in range(3):
            path = self._files(tmp_path / f"more{i}", 1, size=100 + i)[0]
            with blobs.batch() as batch:
                digest = batch.put_file(path)
            assert reader.exists(digest) and reader.read_bytes(digest) == path.read_bytes()

    def test_deleting_a_packed_blob_rewrites_its_pack_without_it(
        self, blobs: BlobStore, tmp_path: Path
    ):
        paths = self._files(tmp_path / "src", 4)
        with blobs.batch() as batch:
            digests = [batch.put_file(p) for p in paths]
        old_packs = _pack_files(blobs)
        assert blobs.delete_many(digests[:2]) == 2
        assert not blobs.exists(digests[0]) and not blobs.exists(digests[1])
        assert blobs.delete(digests[0]) is False
        for path, digest in zip(paths[2:], digests[2:], strict=True):
            assert blobs.read_bytes(digest) == path.read_bytes()
        assert set(blobs.iter_digests()) == set(digests[2:])
        if blobs.backend.supports_packs:
            assert not set(old_packs) & set(_pack_files(blobs))
        assert blobs.delete_many(digests[2:]) == 2
        assert list(blobs.iter_digests()) == [] and _pack_files(blobs) == []
