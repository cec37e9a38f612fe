"""The dataset store contract. Conventions as in :mod:`loopline.store.base`: ``get_*`` raises
NotFound, never returns None; every method is one transaction. Inputs arrive validated by
:class:`~loopline.data.service.DataService`."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from loopline.data.entities import Dataset, DatasetVersion

__all__ = ["DataStore", "NewDatasetVersion"]


@dataclass(frozen=True)
class NewDatasetVersion:
    digest: str
    kind: str
    file_count: int
    total_size: int
    created_by: str
    message: str = ""
    row_count: int | None = None
    schema: list[dict[str, Any]] | None = None
    profile_digest: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class DataStore(abc.ABC):
    @abc.abstractmethod
    def add_version(self, name: str, new: NewDatasetVersion) -> tuple[DatasetVersion, bool]:
        """Create the dataset if new and, unless its latest version has the same manifest
        digest, a version numbered one past the highest ever issued, with its blob references,
        in one transaction. Returns the version and whether it was created (False: unchanged
        content, the latest version is returned)."""

    @abc.abstractmethod
    def get_version(self, name: str, version: int | None) -> DatasetVersion:
        """``version=None``: the latest. NotFound for an unknown dataset or version."""

    @abc.abstractmethod
    def versions_with_digest(self, digest: str) -> list[DatasetVersion]:
        """Versions (of any dataset) whose manifest digest is ``digest``, oldest first."""

    @abc.abstractmethod
    def list_datasets(self) -> list[Dataset]: ...

    @abc.abstractmethod
    def get_dataset(self, name: str) -> Dataset: ...

    @abc.abstractmethod
    def list_versions(self, name: str) -> list[DatasetVersion]:
        """Newest first."""

    @abc.abstractmethod
    def delete_version(self, name: str, version: int) -> None:
        """The version row and its blob references (the blobs go at the next GC if nothing
        else holds them). Numbers are never reused."""

    @abc.abstractmethod
    def delete_dataset(self, name: str) -> None: ...
