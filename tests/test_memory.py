"""Memory: storing and restoring a file far larger than the memory budget keeps memory flat,
because bytes are streamed and hashed in chunks, never held whole."""

from __future__ import annotations

import json
import os
import resource
import shutil
from pathlib import Path

import blake3
import pytest

from tests.processes import Children

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
BLOCK = 64 * MiB
SIZE = 2048 * MiB
BUDGET = 150 * MiB
"""Allowed growth of peak resident memory over the baseline after imports."""
WAIT = 300.0


def round_trip(settings: dict, home: str, source: str, dest: str, report: str) -> None:
    """In a fresh process: put_file then get_to_path, and report the peak-RSS growth."""
    import gc

    from loopline.config import Settings
    from loopline.workspace import make_blob_store

    blobs = make_blob_store(Settings.for_home(home, **settings))
    gc.collect()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    digest = blobs.put_file(source)
    blobs.get_to_path(digest, dest)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    Path(report).write_text(json.dumps({"digest": digest, "baseline": baseline, "peak": peak}))


def _write_source(path: Path, block: bytes, size: int) -> str:
    """``size`` bytes: ``block`` repeated, each copy stamped with its index so no two are equal.
    Returns the BLAKE3 digest of the whole file."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    with path.open("wb") as out:
        for index in range(size // len(block)):
            stamped = index.to_bytes(8, "big") + block[8:]
            hasher.update(stamped)
            out.write(stamped)
    return hasher.hexdigest()


@pytest.mark.parametrize(
    ("backend", "size"), [("local", SIZE), ("s3", SIZE // 2)], ids=["local-2GiB", "s3-1GiB"]
)
def test_a_large_file_round_trips_with_flat_memory(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str, size: int
):
    """put_file and get_to_path of a file of gigabytes grow peak resident memory by under
    150 MiB, on local disk and through S3 (multipart uploads with bounded parts in flight)."""
    block = os.urandom(BLOCK)
    source, dest = tmp_path / "big.bin", tmp_path / "restored" / "big.bin"
    artifacts, report = tmp_path / "artifacts", tmp_path / "report.json"
    if backend == "s3":
        settings = request.getfixturevalue("seaweedfs").settings_for(f"mem-{tmp_path.name}")
    else:
        settings = {"artifact_uri": str(artifacts)}
    try:
        expected = _write_source(source, block, size)
        with Children(tmp_path / "logs") as children:
            child = children.start(
                "tests.test_memory:round_trip",
                settings,
                str(tmp_path),
                str(source),
                str(dest),
                str(report),
            )
            child.finish(timeout=WAIT)
        measured = json.loads(report.read_text())

        assert measured["digest"] == expected
        assert dest.stat().st_size == size
        with dest.open("rb") as restored:
            for index in (0, size // BLOCK // 2, size // BLOCK - 1):
                restored.seek(index * BLOCK)
                assert restored.read(BLOCK) == index.to_bytes(8, "big") + block[8:]
        growth = measured["peak"] - measured["baseline"]
        assert growth < BUDGET, f"peak RSS grew by {growth / MiB:.0f} MiB"
    finally:
        source.unlink(missing_ok=True)
        dest.unlink(missing_ok=True)
        shutil.rmtree(artifacts, ignore_errors=True)
