"""Crash safety: a process SIGKILLed part-way through a write leaves no partial blob and no
partial transaction behind, and the stores stay usable afterwards.

Each writer runs in a child process that hangs at a known point in the middle of its write
(after bytes have reached the staging area or the S3 server, or after rows were inserted), tells
the test so through a marker file, and is then killed with SIGKILL: no handler, no cleanup.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from loopline.blobs.cas import BlobStore
from loopline.config import Settings
from loopline.entities import BlobRef, NewEvent, Ref
from loopline.store.base import MetadataStore
from loopline.workspace import make_blob_store, make_store, open_workspace
from tests.processes import Children, wait_until

MiB = 1024 * 1024
SOURCE_SIZE = 128 * MiB
"""Above s3fs's multipart threshold (two 50 MiB parts), so S3 receives it in several parts."""
STAGED_BEFORE_KILL = 8 * MiB
DOOMED_EVENTS = 1_200
"""More than two of the store's 500-row chunks: rows have been inserted when the writer dies."""
WAIT = 60.0
HANG = 600.0


# -- children ---------------------------------------------------------------------------------
def put_and_hang(
    settings: dict[str, Any], home: str, method: str, source: str, marker: str
) -> None:
    """Store ``source`` with ``method`` and hang in the middle, after creating ``marker``.

    Locally the hang is in the progress callback once STAGED_BEFORE_KILL bytes are staged; on S3
    it is in the multipart upload, after its first part reached the server and while the others
    are in flight."""
    blobs = make_blob_store(Settings.for_home(home, **settings))
    progress = None
    if settings["artifact_uri"].startswith("s3://"):
        _hang_upload_after_first_part(blobs, marker)
    else:
        progress = _hang_after_bytes(STAGED_BEFORE_KILL, marker)
    if method == "put_file":
        blobs.put_file(source, progress)
    else:
        with open(source, "rb") as src:
            blobs.put_stream(src, progress)
    raise SystemExit("the put completed, but it should have hung until killed")


def _hang_after_bytes(limit: int, marker: str) -> Any:
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if done >= limit:
            Path(marker).touch()
            time.sleep(HANG)

    return progress


def _hang_upload_after_first_part(blobs: BlobStore, marker: str) -> None:
    fs = blobs.backend.fs  # type: ignore[attr-defined]
    call_s3 = fs._call_s3

    async def call(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "upload_part" and kwargs["PartNumber"] > 1:
            await asyncio.sleep(HANG)
        result = await call_s3(method, *args, **kwargs)
        if method == "upload_part":
            Path(marker).touch()
        return result

    fs._call_s3 = call


def append_and_hang(uri: str, marker: str) -> None:
    """Append DOOMED_EVENTS events in one call whose iterator then hangs, transaction open."""
    store = make_store(uri)

    def events() -> Iterator[NewEvent]:
        for i in range(DOOMED_EVENTS):
            yield NewEvent(
                actor="doomed", action="crash.test", object_kind="probe", object_id=f"{i}"
            )
        Path(marker).touch()
        time.sleep(HANG)
        raise SystemExit("never killed")  # raising inside the iterator rolls the call back

    store.append_events(events())


# -- what a writer leaves behind --------------------------------------------------------------
def _unfinished_writes(blobs: BlobStore) -> dict[str, int]:
    """Bytes of writes that began but never published, by name: files in the local staging
    directory, or multipart uploads under the store's S3 prefix (with their uploaded bytes)."""
    backend: Any = blobs.backend
    if not blobs.uri.startswith("s3://"):
        return {p.name: p.stat().st_size for p in backend.staging_dir.rglob("*") if p.is_file()}
    prefix = backend.root.partition("/")[2] + "/"
    uploads = backend.fs.call_s3(
        "list_multipart_uploads", Bucket=backend.bucket, Prefix=prefix
    ).get("Uploads", [])
    found = {}
    for upload in uploads:
        parts = backend.fs.call_s3(
            "list_parts", Bucket=backend.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        ).get("Parts", [])
        found[upload["Key"]] = sum(int(p["Size"]) for p in parts)
    return found


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("source") / "big.bin"
    with path.open("wb") as out:
        for _ in range(SOURCE_SIZE // (16 * MiB)):
            out.write(os.urandom(16 * MiB))
    yield path
    path.unlink()


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blobs: BlobStore) -> Iterator[Path]:
    """The child's TMPDIR, where S3 spools streams; this process's garbage collection looks
    there too, so it never touches other runs' spools. Afterwards the test's blobs and staged
    copies are dropped: they are large, and pytest keeps recent temporary directories."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr("loopline.blobs.s3.SPOOL_DIR", tmp / "loopline-spool")
    yield tmp
    for digest in list(blobs.iter_digests()):
        blobs.delete(digest)
    blobs.backend.clean_staging(older_than=time.time() + 1)


def _kill_mid_put(
    blobs: BlobStore,
    blob_settings: dict[str, Any],
    method: str,
    source: Path,
    tmp_path: Path,
    spool_dir: Path,
) -> None:
    """Run a put of ``source`` in a child, wait until it is genuinely part-way, SIGKILL it."""
    marker = tmp_path / "under-way"
    with Children(tmp_path / "logs") as children:
        writer = children.start(
            "tests.contract.test_crash_safety:put_and_hang",
            blob_settings,
            str(tmp_path),
            method,
            str(source),
            str(marker),
            env={"TMPDIR": str(spool_dir)},
        )
        wait_until(marker.exists, what="the put to get under way", timeout=WAIT, watch=[writer])
        partial = _unfinished_writes(blobs)
        assert partial, "the writer hung before any byte reached the store's staging area"
        assert max(partial.values()) >= STAGED_BEFORE_KILL, partial
        assert writer.proc.poll() is None, writer.output()
        writer.kill()
    assert writer.proc.returncode == -9


class TestKilledBlobWriter:
    @pytest.mark.parametrize("method", ["put_file", "put_stream"])
    def test_a_put_killed_mid_write_leaves_no_visible_blob_and_can_be_redone(
        self,
        blobs: BlobStore,
        blob_settings: dict[str, Any],
        big_source: Path,
        tmp_path: Path,
        spool_dir: Path,
        method: str,
    ):
        """A put killed part-way leaves nothing readable under any key, and the same content
        then stores and verifies."""
        digest = blobs.hash_file(big_source)
        _kill_mid_put(blobs, blob_settings, method, big_source, tmp_path, spool_dir)

        assert list(blobs.backend.iter_objects()) == []
        assert list(blobs.iter_digests()) == []
        assert not blobs.exists(digest)

        if method == "put_file":
            assert blobs.put_file(big_source) == digest
        else:
            with big_source.open("rb") as src:
                assert blobs.put_stream(src) == digest
        assert list(blobs.iter_digests()) == [digest]
        assert blobs.stat(digest).size == SOURCE_SIZE
        assert blobs.verify(digest) is True

    @pytest.mark.parametrize("method", ["put_file", "put_stream"])
    def test_gc_with_no_grace_removes_what_a_killed_writer_abandoned(
        self,
        blobs: BlobStore,
        blob_settings: dict[str, Any],
        big_source: Path,
        tmp_path: Path,
        spool_dir: Path,
        method: str,
    ):
        """Workspace gc with a zero grace period deletes a killed put's staged bytes (staging
        file, spooled copy, unfinished multipart upload) and nothing else."""
        kept = blobs.put_bytes(b"an unrelated blob that a run references")
        _kill_mid_put(blobs, blob_settings, method, big_source, tmp_path, spool_dir)
        spooled = list((spool_dir / "loopline-spool").rglob("put-*"))
        abandoned = len(_unfinished_writes(blobs)) + len(spooled)

        with open_workspace(Settings.for_home(tmp_path, **blob_settings)) as ws:
            ws.store.add_blob_refs([BlobRef(kept, Ref("run", "r1"))])
            report = ws.gc(grace_seconds=0)
        assert report.staging_cleaned == abandoned
        assert report.deleted == 0
        assert _unfinished_writes(blobs) == {}
        assert list((spool_dir / "loopline-spool").rglob("put-*")) == []
        assert list(blobs.iter_digests()) == [kept]


# -- metadata ---------------------------------------------------------------------------------
def _mid_transaction(uri: str) -> bool:
    """True while another connection holds an open transaction that has written to ``uri``."""
    url = make_url(uri)
    if url.get_backend_name() == "sqlite":
        probe = sqlite3.connect(url.database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc)
        else:
            probe.execute("ROLLBACK")
            return False
        finally:
            probe.close()
    import psycopg

    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'idle in transaction' "
            "AND backend_xid IS NOT NULL"
        ).fetchone()
    return bool(row and row[0])


class TestKilledTransaction:
    def test_a_writer_killed_mid_transaction_leaves_none_of_its_rows(
        self, store: MetadataStore, store_uri: str, tmp_path: Path
    ):
        """Events from an append killed after two of its chunks were inserted are all absent,
        and the database stays consistent and writable."""
        store.append_events([NewEvent("parent", "before.crash", "probe", "kept")])
        marker = tmp_path / "rows-inserted"
        with Children(tmp_path / "logs") as children:
            writer = children.start(
                "tests.contract.test_crash_safety:append_and_hang", store_uri, str(marker)
            )
            wait_until(marker.exists, what="the rows to be inserted", timeout=WAIT, watch=[writer])
            assert _mid_transaction(store_uri), "the writer holds no open write transaction"
            writer.kill()

        assert store.count_events(action="crash.test") == 0
        assert [e.object_id for e in store.list_events()] == ["kept"]
        assert store.append_events([NewEvent("parent", "after.crash", "probe", "new")]) == 1

        reopened = make_store(store_uri)
        try:
            assert reopened.schema_revision() == reopened.latest_revision()
            assert [e.action for e in reopened.list_events()] == ["before.crash", "after.crash"]
            assert reopened.count_events() == 2
        finally:
            reopened.close()
        url = make_url(store_uri)
        if url.get_backend_name() == "sqlite":
            with sqlite3.connect(url.database) as db:
                assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
