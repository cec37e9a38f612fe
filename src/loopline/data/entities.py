"""Dataset records. A dataset is a name; a version is an immutable manifest of files (path,
size, BLAKE3 digest) stored as a blob, so two versions with the same content have the same
manifest digest and share every byte."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AddResult", "Dataset", "DatasetKind", "DatasetVersion"]


class DatasetKind(enum.StrEnum):
    FILES = "files"
    """Any files: a file, a directory or a glob, stored as they are."""
    TABLE = "table"
    """One table stored as canonical Parquet (``data.parquet``), with schema, row count and
    profile."""


TABLE_FILE = "data.parquet"
"""The one file of a tabular version."""


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: int
    digest: str
    """The manifest's digest: the version's identity by content."""
    kind: str
    file_count: int
    total_size: int
    created_ms: int
    created_by: str
    message: str = ""
    row_count: int | None = None
    schema: list[dict[str, Any]] | None = None
    profile_digest: str | None = None
    """Blob holding the profile (JSON) of a tabular version."""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``NAME@VERSION``: how the version is named on the command line and in lineage."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    created_ms: int
    updated_ms: int
    latest_version: int | None
    version_count: int


@dataclass(frozen=True)
class AddResult:
    version: DatasetVersion
    created: bool
    """False when the content equals the latest version's: nothing new was recorded."""
    hashed: int
    reused: int
    malformed: list[Any] | None = None
    """Rows of a CSV that could not be parsed (line number, reason), skipped."""
