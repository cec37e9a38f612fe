"""Shared fixtures: a clean environment for every test and the real services."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import SeaweedS3, missing_service, postgres_database, start_seaweedfs

KEEP_ENV = {"LOOPLINE_REQUIRE_SERVICES", "LOOPLINE_TEST_POSTGRES_URI", "LOOPLINE_TEST_REDIS_URL"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's LOOPLINE_* settings or a loopline.toml above the repo."""
    for name in list(os.environ):
        if name.startswith("LOOPLINE_") and name not in KEEP_ENV:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _forget_current_workspace() -> Iterator[None]:
    """The module-level API's current workspace never leaks from one test into the next."""
    yield
    import loopline.api

    loopline.api.use_workspace(None)


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    """A fresh PostgreSQL database for this test alone, dropped afterwards."""
    admin = os.environ.get("LOOPLINE_TEST_POSTGRES_URI")
    if not admin:
        missing_service("PostgreSQL (set LOOPLINE_TEST_POSTGRES_URI)")
    with postgres_database(admin) as uri:  # type: ignore[arg-type]
        yield uri


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedS3]:
    """One real SeaweedFS S3 server for the whole session, on free loopback ports."""
    with start_seaweedfs() as server:
        yield server
