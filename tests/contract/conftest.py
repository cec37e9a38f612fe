"""The only file that names backends. Every contract test runs once per backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopline.blobs.cas import BlobStore
from loopline.config import Settings
from loopline.store.base import MetadataStore
from loopline.workspace import make_blob_store, make_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta' / 'loopline.db'}"
    else:
        yield request.getfixturevalue("postgres_uri")


@pytest.fixture
def store(store_uri: str) -> Iterator[MetadataStore]:
    opened = make_store(store_uri)
    yield opened
    opened.close()


@pytest.fixture(params=["local", "s3"])
def blob_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings keyword arguments naming a fresh, empty blob store of each backend."""
    if request.param == "local":
        return {"artifact_uri": str(tmp_path / "blobs")}
    server = request.getfixturevalue("seaweedfs")
    return server.settings_for(f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def blob_backend_name(blob_settings: dict[str, Any]) -> str:
    return "s3" if blob_settings["artifact_uri"].startswith("s3://") else "local"


@pytest.fixture
def blobs(blob_settings: dict[str, Any], tmp_path: Path) -> BlobStore:
    return make_blob_store(Settings.for_home(tmp_path, **blob_settings))
