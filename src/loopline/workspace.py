"""The composition root: settings in, wired stores and services out.

Backends are chosen by URI scheme from the one table below; nothing else in Loopline asks which
backend it runs on. Implementations are named as lazy dotted paths, so psycopg and s3fs are
imported only when a workspace actually uses them.
"""

from __future__ import annotations

import importlib
import time
import uuid
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.blobs.cas import BlobStore
from loopline.blobs.gc import GcReport, collect
from loopline.config import (
    CONFIG_FILENAME,
    Settings,
    absolutize,
    load_settings,
    mask_uri,
    strip_password,
)
from loopline.errors import ConfigError, NotFound
from loopline.events import EventLog
from loopline.lineage import LineageGraph
from loopline.store.base import MetadataStore
from loopline.store.database import Database
from loopline.store.sql import SqlStore

if TYPE_CHECKING:  # imported where used: a data command never loads tracking or the registry
    from loopline.client.http import HttpTransport
    from loopline.data.service import DataService
    from loopline.registry.service import RegistryService
    from loopline.tracking.service import TrackingService

__all__ = ["BACKENDS", "Workspace", "init_workspace", "open_workspace"]

BACKENDS: dict[str, dict[str, str]] = {
    "store": {
        "sqlite": "store.database:Database",
        "postgresql": "store.database:Database",
        "postgres": "store.database:Database",
    },
    "blobs": {
        "file": "blobs.local:LocalBackend",
        "s3": "blobs.s3:S3Backend",
    },
}


def _scheme(uri: str, default: str) -> str:
    head, sep, _ = uri.partition("://")
    if not sep:
        return default
    return head.split("+", 1)[0].lower()


def _load(kind: str, uri: str, default_scheme: str, setting: str) -> Callable[..., Any]:
    scheme = _scheme(uri, default_scheme)
    table = BACKENDS[kind]
    if scheme not in table:
        raise ConfigError(
            f"{setting} {mask_uri(uri)!r}: unknown scheme {scheme!r}; "
            f"supported: {', '.join(sorted(table))}"
        )
    module, _, name = table[scheme].partition(":")
    return getattr(importlib.import_module(f"loopline.{module}"), name)  # type: ignore[no-any-return]


def make_database(uri: str, *, migrate_on_open: bool = True) -> Database:
    """The metadata database for ``uri``, by default migrated to the current schema."""
    factory = _load("store", uri, "", "store URI")
    return factory(uri, migrate_on_open=migrate_on_open)  # type: ignore[no-any-return]


def make_store(uri: str, *, migrate_on_open: bool = True) -> MetadataStore:
    """The foundation metadata store (events, lineage, blob refs) for ``uri``."""
    return SqlStore(make_database(uri, migrate_on_open=migrate_on_open))


def make_blob_store(settings: Settings) -> BlobStore:
    uri = settings.artifact_uri
    factory = _load("blobs", uri, "file", "artifact URI")
    if _scheme(uri, "file") == "file":
        path = uri[len("file://") :] if uri.startswith("file://") else uri
        return BlobStore(factory(path))
    secret = settings.s3_secret_access_key
    key = settings.s3_access_key_id
    return BlobStore(
        factory(
            uri,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            key=key.get_secret_value() if key else None,
            secret=secret.get_secret_value() if secret else None,
        )
    )


class Workspace:
    """One configured Loopline installation: its metadata store, blob store and services.

    Stores open lazily, so commands that only read settings never touch a database.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def database(self) -> Database:
        return make_database(self.settings.store_uri)

    @cached_property
    def store(self) -> MetadataStore:
        store = SqlStore(self.database)
        # The first process to open a workspace names it; the others read the same id. Checked
        # with a read first: every later open (each CLI command) then takes no write lock.
        try:
            store.get_meta("workspace_id")
        except NotFound:
            store.set_meta("created_ms", str(time.time_ns() // 1_000_000), overwrite=False)
            store.set_meta("workspace_id", uuid.uuid4().hex, overwrite=False)
        return store

    @cached_property
    def blobs(self) -> BlobStore:
        return make_blob_store(self.settings)

    @cached_property
    def events(self) -> EventLog:
        if self.remote:
            from loopline.client.remote_events import RemoteEventLog

            return RemoteEventLog(self.transport, self.settings.actor)  # type: ignore[return-value]
        return EventLog(self.store, self.settings.actor)

    @cached_property
    def lineage(self) -> LineageGraph:
        if self.remote:
            from loopline.client.remote_events import RemoteLineage

            return RemoteLineage(self.transport)  # type: ignore[return-value]
        return LineageGraph(self.store)

    @cached_property
    def transport(self) -> HttpTransport:
        """The HTTP connection pool to the server, when ``tracking_uri`` names one."""
        from loopline.client.http import HttpTransport

        return HttpTransport.from_settings(self.settings)

    @cached_property
    def tracking(self) -> TrackingService:
        """In-process tracking on the configured stores, or, when ``tracking_uri`` names a
        ``loopline server``, the same interface over HTTP."""
        if self.remote:
            from loopline.client.remote_tracking import RemoteTrackingService

            return RemoteTrackingService(self.transport, self.settings.actor)  # type: ignore[return-value]
        from loopline.store.sql_tracking import SqlTrackingStore
        from loopline.tracking.service import TrackingService

        return TrackingService(
            SqlTrackingStore(self.database),
            self.blobs,
            self.events,
            self.lineage,
            self.settings.actor,
        )

    @cached_property
    def registry(self) -> RegistryService:
        """The model registry on the configured stores, or, when ``tracking_uri`` names a
        ``loopline server``, the same interface over HTTP (logged models not yet)."""
        if self.remote:
            from loopline.client.remote_registry import RemoteRegistryService

            return RemoteRegistryService(self.transport, self.settings.actor)  # type: ignore[return-value]
        from loopline.models.loading import source_files
        from loopline.registry.provenance import RunFacts
        from loopline.registry.service import RegistryService
        from loopline.store.sql_registry import SqlRegistryStore

        return RegistryService(
            SqlRegistryStore(self.database),
            self.blobs,
            self.events,
            self.lineage,
            self.settings.actor,
            files_of=lambda source: source_files(self, source),
            facts=RunFacts(self.tracking, self.lineage),
            policies=self.settings.promotion_policies,
        )

    @cached_property
    def data(self) -> DataService:
        """Dataset versions on the configured stores (in-process only for now)."""
        if self.remote:
            raise ConfigError(
                "dataset versions are not served over HTTP yet; unset LOOPLINE_TRACKING_URI "
                "and point LOOPLINE_STORE_URI / LOOPLINE_ARTIFACT_URI at the shared stores"
            )
        from loopline.data.service import DataService
        from loopline.store.hash_index import HashIndex
        from loopline.store.sql_data import SqlDataStore

        return DataService(
            SqlDataStore(self.database),
            self.blobs,
            self.events,
            self.lineage,
            self.settings.actor,
            HashIndex(self.settings.state_dir / "hash-index.sqlite3"),
        )

    @property
    def remote(self) -> bool:
        """True when tracking calls go to a server (``tracking_uri`` is http/https)."""
        uri = self.settings.tracking_uri or ""
        return uri.startswith(("http://", "https://"))

    @property
    def id(self) -> str:
        return self.store.get_meta("workspace_id")

    def gc(
        self,
        *,
        dry_run: bool = False,
        grace_seconds: float | None = None,
        purge_runs_older_than: float | None = 0,
        on_progress: Callable[[int], None] | None = None,
    ) -> GcReport:
        """Purge soft-deleted runs (deleted more than ``purge_runs_older_than`` seconds ago;
        ``None`` keeps them all), then delete blobs no metadata row references, sparing those
        younger than the grace period (``gc_grace_seconds``, an hour by default)."""
        grace = self.settings.gc_grace_seconds if grace_seconds is None else grace_seconds
        purged: list[str] = []
        if purge_runs_older_than is not None:
            older_ms = int(purge_runs_older_than * 1000)
            if dry_run:
                purged = self.tracking.deleted_run_ids(older_ms)
            else:
                purged = self.tracking.purge_deleted_runs(older_ms)
        report = collect(
            self.blobs,
            self.store.iter_blob_refs(),
            grace_seconds=grace,
            dry_run=dry_run,
            on_progress=on_progress,
        )
        report.purged_runs = purged
        if not dry_run and report.deleted:
            self.events.record(
                None,
                "blobs.gc",
                "workspace",
                self.id,
                {"deleted": report.deleted, "deleted_bytes": report.deleted_bytes},
            )
        return report

    def close(self) -> None:
        if "database" in self.__dict__:
            self.database.close()
        if "transport" in self.__dict__:
            self.transport.close()
        for name in ("database", "store", "events", "lineage", "tracking", "registry", "transport"):
            self.__dict__.pop(name, None)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_workspace(settings: Settings | None = None, **flags: Any) -> Workspace:
    """Open the workspace ``settings`` describe, or resolve settings from ``flags``, the
    environment and the nearest ``loopline.toml``."""
    if settings is None:
        settings = load_settings(flags).settings
    elif flags:
        raise ConfigError("pass either settings or flags to open_workspace, not both")
    return Workspace(settings)


_TOML_TEMPLATE = """\
# Loopline workspace settings. LOOPLINE_* environment variables and CLI flags override them.
# Relative paths are relative to this file. See docs/configuration.md for every setting.
store_uri = "{store_uri}"
artifact_uri = "{artifact_uri}"
"""


def init_workspace(directory: str | Path = ".", **overrides: Any) -> Workspace:
    """Create (or re-open) a workspace in ``directory``: ``loopline.toml`` plus ``.loopline/``
    holding the SQLite database and the blob directory, migrated and ready. An existing
    ``loopline.toml`` is kept, never overwritten."""
    home = Path(directory).resolve()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create workspace directory {home}: {exc.strerror}") from exc
    config_file = home / CONFIG_FILENAME
    created = False
    # Paths given on the command line are relative to where the user stands, not to the new
    # workspace: make them absolute before they go into the file.
    overrides = {k: absolutize(k, v, Path.cwd()) if v else v for k, v in overrides.items()}
    if not config_file.exists():
        store_uri = overrides.get("store_uri") or "sqlite:///.loopline/loopline.db"
        artifact_uri = overrides.get("artifact_uri") or ".loopline/artifacts"
        text = _TOML_TEMPLATE.format(store_uri=strip_password(store_uri), artifact_uri=artifact_uri)
        if strip_password(store_uri) != store_uri:
            text += (
                "# The database password was not written here: supply it with PGPASSWORD,\n"
                "# ~/.pgpass or LOOPLINE_STORE_URI.\n"
            )
        try:
            config_file.write_text(text)
        except OSError as exc:
            raise ConfigError(f"cannot write {config_file}: {exc.strerror}") from exc
        created = True
    settings = load_settings({**overrides, "home": str(home)}).settings
    workspace = Workspace(settings)
    workspace.blobs  # noqa: B018 - create the blob directory / check the bucket now
    if created:
        workspace.events.record(
            None, "workspace.init", "workspace", workspace.id, {"home": str(home)}
        )
    return workspace
