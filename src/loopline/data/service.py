"""Dataset versions: the one implementation behind ``ll.data``, ``loopline data`` and (later)
the REST routes.

A version is immutable by construction: its identity is the digest of a manifest listing
every file's path, size and BLAKE3 digest, and its bytes live in the content-addressed blob
store, where no write can change what a digest names. Adding unchanged content creates no
version; adding changed content creates the next one, and older versions still check out
byte-identical. The version row is committed last, after every blob is durable, so a process
killed mid-add leaves at most unreferenced blobs (collected by ``loopline gc``), never a
half-registered version.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loopline.blobs.cas import BlobStore, Manifest
from loopline.data.entities import (
    TABLE_FILE,
    AddResult,
    Dataset,
    DatasetKind,
    DatasetVersion,
)
from loopline.data.files import FoundFile, find_files, store_files
from loopline.data.store import DataStore, NewDatasetVersion
from loopline.entities import Ref
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.events import EventLog
from loopline.lineage import LineageGraph
from loopline.paths import join_inside
from loopline.store.hash_index import FileStat, HashIndex

__all__ = ["TABLE_SUFFIXES", "DataService", "check_dataset_name", "parse_ref"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".parquet", ".pq")
"""Single files with these suffixes are stored as tables (canonical Parquet) by default."""


def check_dataset_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"dataset name {name!r} must start with a letter or digit and hold only letters, "
            "digits, '.', '_' and '-' (at most 200 characters)"
        )
    return name


def parse_ref(ref: str) -> tuple[str | None, int | None, str | None]:
    """``NAME@3`` -> (name, 3, None); ``NAME@latest`` or ``NAME`` -> (name, None, None); a
    64-hex manifest digest -> (None, None, digest)."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(f"dataset reference must be NAME@VERSION, got {ref!r}")
    ref = ref.strip()
    if _DIGEST.match(ref):
        return None, None, ref
    name, sep, version = ref.partition("@")
    check_dataset_name(name)
    if not sep or version == "latest":
        return name, None, None
    if not version.isdigit() or int(version) < 1:
        raise InvalidInput(
            f"dataset reference {ref!r}: the version must be a positive number or 'latest'"
        )
    return name, int(version), None


class DataService:
    def __init__(
        self,
        store: DataStore,
        blobs: BlobStore,
        events: EventLog,
        lineage: LineageGraph,
        actor: str,
        index: HashIndex | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.events = events
        self.lineage = lineage
        self.actor = actor
        self.index = index

    # -- adding ------------------------------------------------------------------------------
    def _record(
        self,
        name: str,
        files: Sequence[FoundFile],
        *,
        kind: str,
        message: str,
        progress: Callable[[int], None] | None,
        table: dict[str, Any] | None = None,
        index: HashIndex | None = None,
    ) -> AddResult:
        try:
            latest = self.store.get_version(name, None)
            present: set[str] = set(self.blobs.manifest_digests(latest.digest))
        except NotFound:
            present = set()
        report = store_files(files, self.blobs, index, progress=progress, present=present)
        manifest_digest = self.blobs.put_bytes(report.manifest.to_bytes())
        table = table or {}
        profile_digest = None
        if table.get("profile") is not None:
            profile_digest = self.blobs.put_bytes(
                json.dumps(table["profile"], sort_keys=True).encode()
            )
        new = NewDatasetVersion(
            digest=manifest_digest,
            kind=kind,
            file_count=len(report.manifest.entries),
            total_size=report.manifest.total_size,
            created_by=self.actor,
            message=message,
            row_count=table.get("row_count"),
            schema=table.get("schema"),
            profile_digest=profile_digest,
        )
        version, created = self.store.add_version(name, new)
        if created:
            self.events.record(
                None,
                "dataset.version_created",
                "dataset_version",
                version.ref,
                {
                    "digest": version.digest,
                    "kind": kind,
                    "files": version.file_count,
                    "bytes": version.total_size,
                    "rows": version.row_count,
                },
            )
        return AddResult(
            version, created, report.hashed, report.reused, table.get("malformed") or None
        )

    def add(
        self,
        source: str | os.PathLike[str],
        name: str,
        *,
        message: str = "",
        as_table: bool | None = None,
        progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> AddResult:
        """Version a file, a directory or a glob as ``name``. A single CSV/TSV/Parquet file is
        stored as a table (canonical Parquet with schema, row count and profile) unless
        ``as_table=False``; anything else is stored file by file."""
        name = check_dataset_name(name)
        text = os.fspath(source)
        single = Path(text).is_file()
        if as_table is None:
            as_table = single and text.lower().endswith(TABLE_SUFFIXES)
        if as_table:
            if not single:
                raise InvalidInput(f"{text} is not a single file; only one file can be a table")
            return self.log_table(Path(text), name, message=message)
        files = find_files(text)
        if on_total is not None:
            on_total(sum(f.stat.size for f in files))
        return self._record(
            name,
            files,
            kind=DatasetKind.FILES,
            message=message,
            progress=progress,
            index=self.index,
        )

    def log_table(self, data: Any, name: str, *, message: str = "") -> AddResult:
        """Version a table (a pandas DataFrame, a pyarrow Table, or a CSV/TSV/Parquet path) as
        canonical Parquet, with its Arrow schema, row count and profile. Malformed CSV rows are
        skipped and reported with their line numbers."""
        from loopline.data import tabular

        name = check_dataset_name(name)
        with tempfile.TemporaryDirectory(prefix="loopline-table-") as tmp:
            target = Path(tmp) / TABLE_FILE
            info = tabular.write_parquet(data, target)
            profile = tabular.profile_table(target)
            st = target.stat()
            found = FoundFile(TABLE_FILE, FileStat(str(target), st.st_size, st.st_mtime_ns, 0))
            return self._record(
                name,
                [found],
                kind=DatasetKind.TABLE,
                message=message,
                progress=None,
                table={
                    "schema": info.schema,
                    "row_count": info.row_count,
                    "profile": profile,
                    "malformed": info.malformed,
                },
            )

    # -- reading -----------------------------------------------------------------------------
    def resolve(self, ref: str | DatasetVersion) -> DatasetVersion:
        """The version ``ref`` names: ``NAME@3``, ``NAME@latest`` (or ``NAME``), or a manifest
        digest."""
        if isinstance(ref, DatasetVersion):
            return ref
        name, version, digest = parse_ref(ref)
        if digest is not None:
            found = self.store.versions_with_digest(digest)
            if not found:
                raise NotFound(f"no dataset version has manifest digest {digest}")
            return found[0]
        assert name is not None
        return self.store.get_version(name, version)

    def manifest(self, ref: str | DatasetVersion) -> Manifest:
        return self.blobs.read_manifest(self.resolve(ref).digest)

    def list_datasets(self) -> list[Dataset]:
        return self.store.list_datasets()

    def get_dataset(self, name: str) -> Dataset:
        return self.store.get_dataset(check_dataset_name(name))

    def versions(self, name: str) -> list[DatasetVersion]:
        """Newest first."""
        return self.store.list_versions(check_dataset_name(name))

    def profile(self, ref: str | DatasetVersion) -> dict[str, Any] | None:
        """The stored profile of a tabular version (None for file datasets)."""
        version = self.resolve(ref)
        if not version.profile_digest:
            return None
        return json.loads(self.blobs.read_bytes(version.profile_digest))

    def checkout(
        self, ref: str | DatasetVersion, dst: str | os.PathLike[str], *, overwrite: bool = False
    ) -> Path:
        """Write the version's files under ``dst``, every byte verified against its digest.
        Files are copies, never hard links to the stored blobs: permission bits do not stop
        every writer (root ignores them), and an edit in the checkout must never be able to
        reach the stored version."""
        version = self.resolve(ref)
        root = Path(dst)
        if root.exists() and any(root.iterdir()) and not overwrite:
            raise AlreadyExists(f"{root} is not empty; choose an empty directory or --overwrite")
        root.mkdir(parents=True, exist_ok=True)
        for entry in self.blobs.read_manifest(version.digest).entries:
            target = join_inside(root, entry.path, "file path")
            target.parent.mkdir(parents=True, exist_ok=True)
            self.blobs.get_to_path(entry.digest, target)
        return root

    def table_path(self, ref: str | DatasetVersion, dst: str | os.PathLike[str]) -> Path:
        """A verified copy of a tabular version's Parquet file at ``dst`` (a file path)."""
        version = self.resolve(ref)
        if version.kind != DatasetKind.TABLE:
            raise InvalidInput(f"{version.ref} holds files, not a table")
        (entry,) = self.blobs.read_manifest(version.digest).entries
        return self.blobs.get_to_path(entry.digest, dst)

    def load(self, ref: str | DatasetVersion, *, run_id: str | None = None) -> Any:
        """A tabular version as a pandas DataFrame; a file dataset as the path of a verified
        checkout in a temporary directory. With ``run_id`` the read is recorded in lineage."""
        version = self.resolve(ref)
        if run_id:
            self.use(version, run_id)
        scratch = Path(tempfile.mkdtemp(prefix="loopline-data-"))
        if version.kind == DatasetKind.TABLE:
            import pandas as pd

            path = self.table_path(version, scratch / TABLE_FILE)
            try:
                return pd.read_parquet(path)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        return self.checkout(version, scratch / version.name)

    # -- validation --------------------------------------------------------------------------
    def validate(
        self,
        ref: str | DatasetVersion,
        suite: Any,
        *,
        reference: str | DatasetVersion | None = None,
    ) -> Any:
        """Check a tabular version against an expectation suite (a file, a mapping or a
        :class:`~loopline.data.expectations.Suite`). Distribution checks compare with
        ``reference``, else the suite's own ``reference`` version. Returns the
        :class:`~loopline.data.expectations.ValidationReport`; the outcome is recorded in the
        event log."""
        from loopline.data import expectations

        version = self.resolve(ref)
        parsed = expectations.load_suite(suite)
        ref_version = reference or parsed.reference
        with tempfile.TemporaryDirectory(prefix="loopline-validate-") as tmp:
            path = self.table_path(version, Path(tmp) / "data.parquet")
            ref_path = None
            if ref_version:
                ref_path = self.table_path(self.resolve(ref_version), Path(tmp) / "ref.parquet")
            report = expectations.validate(path, parsed, dataset=version.ref, reference=ref_path)
        self.events.record(
            None,
            "dataset.validated",
            "dataset_version",
            version.ref,
            {"suite": parsed.name, "success": report.success, **report.statistics},
        )
        return report

    def infer_expectations(self, ref: str | DatasetVersion, *, name: str | None = None) -> Any:
        """A suite describing a (good) tabular version, to validate later versions against;
        it names the version as its drift reference."""
        from loopline.data import expectations

        version = self.resolve(ref)
        with tempfile.TemporaryDirectory(prefix="loopline-infer-") as tmp:
            path = self.table_path(version, Path(tmp) / "data.parquet")
            return expectations.infer_suite(
                path, self.profile(version), name=name or version.name, reference=version.ref
            )

    # -- lineage -----------------------------------------------------------------------------
    def use(self, ref: str | DatasetVersion, run_id: str) -> DatasetVersion:
        """Record that run ``run_id`` read this version: the run, and every model registered
        from it, then show it in their lineage."""
        version = self.resolve(ref)
        if self.lineage.link(Ref("dataset_version", version.ref), Ref("run", run_id), "read"):
            self.events.record(
                None, "dataset.used", "dataset_version", version.ref, {"run_id": run_id}
            )
        return version

    # -- comparing and deleting -------------------------------------------------------------
    def diff(
        self,
        a: str | DatasetVersion,
        b: str | DatasetVersion,
        *,
        key: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """What changed from ``a`` to ``b``: files added, removed and modified (by digest); for
        two tabular versions also schema, row counts, rows by ``key`` and column statistics."""
        old, new = self.resolve(a), self.resolve(b)
        before = {e.path: e for e in self.blobs.read_manifest(old.digest).entries}
        after = {e.path: e for e in self.blobs.read_manifest(new.digest).entries}
        result: dict[str, Any] = {
            "old": old.ref,
            "new": new.ref,
            "same_content": old.digest == new.digest,
            "files": {
                "added": sorted(set(after) - set(before)),
                "removed": sorted(set(before) - set(after)),
                "modified": sorted(
                    p for p in set(before) & set(after) if before[p].digest != after[p].digest
                ),
                "unchanged": sum(
                    1 for p in set(before) & set(after) if before[p].digest == after[p].digest
                ),
            },
            "size": {"old": old.total_size, "new": new.total_size},
        }
        if old.kind == DatasetKind.TABLE and new.kind == DatasetKind.TABLE:
            from loopline.data import tabular

            with tempfile.TemporaryDirectory(prefix="loopline-diff-") as tmp:
                result["table"] = tabular.diff_tables(
                    self.table_path(old, Path(tmp) / "old.parquet"),
                    self.table_path(new, Path(tmp) / "new.parquet"),
                    old_profile=self.profile(old),
                    new_profile=self.profile(new),
                    key=list(key) if key else None,
                )
        elif key:
            raise InvalidInput("--key compares rows, so both versions must be tables")
        return result

    def delete(self, name: str, version: int | None = None) -> None:
        """Delete one version, or the dataset with every version. The blobs go at the next
        ``loopline gc`` unless another version (or run, or model) still holds them."""
        name = check_dataset_name(name)
        if version is None:
            self.store.delete_dataset(name)
            self.events.record(None, "dataset.deleted", "dataset", name)
            return
        self.store.delete_version(name, version)
        self.events.record(None, "dataset.version_deleted", "dataset_version", f"{name}@{version}")
