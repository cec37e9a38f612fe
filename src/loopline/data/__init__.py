"""Dataset versions: immutable, content-addressed and deduplicated; tables with schema and
profile; validation; lineage from runs and models back to the data they read.

    v = ll.data.log_dataset(df, name="transactions")      # -> transactions@1
    ll.data.add("images/", name="images")                 # a directory, a file or a glob
    with ll.start_run():
        train = ll.data.load("transactions@latest")        # recorded as read by the run

Versions are addressed as ``NAME@3``, ``NAME@latest`` or by manifest digest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from loopline.data.datasheet import datasheet
from loopline.data.entities import AddResult, Dataset, DatasetKind, DatasetVersion

__all__ = [
    "AddResult",
    "Dataset",
    "DatasetKind",
    "DatasetVersion",
    "add",
    "checkout",
    "datasheet",
    "diff",
    "get",
    "load",
    "log_dataset",
    "use",
    "versions",
]


def _service() -> Any:
    from loopline.api import current_workspace

    return current_workspace().data


def _active_run_id() -> str | None:
    from loopline.tracking import fluent

    run = fluent.active_run()
    return run.run_id if run is not None else None


def log_dataset(data: Any, name: str, *, message: str = "") -> DatasetVersion:
    """Version a DataFrame / pyarrow Table (stored as canonical Parquet with schema, row count
    and profile) or a path (a CSV/Parquet file becomes a table; a directory or glob is stored
    file by file). Unchanged content returns the latest version instead of a new one. Inside a
    run, the run is recorded as having read the version."""
    service = _service()
    if isinstance(data, str | os.PathLike):
        result = service.add(data, name, message=message)
    else:
        result = service.log_table(data, name, message=message)
    if (run_id := _active_run_id()) is not None:
        service.use(result.version, run_id)
    return result.version


def add(source: str | os.PathLike[str], name: str, *, message: str = "") -> AddResult:
    """Version a file, directory or glob; the result says whether a version was created."""
    return _service().add(source, name, message=message)


def get(ref: str) -> DatasetVersion:
    """The version ``NAME@3`` / ``NAME@latest`` / a manifest digest names."""
    return _service().resolve(ref)


def versions(name: str) -> list[DatasetVersion]:
    """Every version of ``name``, newest first."""
    return _service().versions(name)


def use(ref: str, *, run_id: str | None = None) -> DatasetVersion:
    """Record that the active run (or ``run_id``) read this version, for lineage."""
    run = run_id or _active_run_id()
    if run is None:
        from loopline.errors import InvalidInput

        raise InvalidInput("ll.data.use needs an active run (ll.start_run()) or run_id=")
    return _service().use(ref, run)


def load(ref: str) -> Any:
    """A tabular version as a pandas DataFrame (a file dataset: the path of a verified
    checkout in a temporary directory). Inside a run the read is recorded in lineage."""
    return _service().load(ref, run_id=_active_run_id())


def checkout(ref: str, directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write the version's files into ``directory``, each verified against its digest."""
    return _service().checkout(ref, directory, overwrite=overwrite)


def diff(old: str, new: str, *, key: list[str] | None = None) -> dict[str, Any]:
    """Files added/removed/modified; for tables also schema, rows (by ``key``) and statistics."""
    return _service().diff(old, new, key=key)
