"""Table definitions (SQLAlchemy Core). Migrations create them; the SQL store queries them.

Every later domain adds its tables here and through a new migration in ``migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

__all__ = [
    "alias_history",
    "api_tokens",
    "blob_refs",
    "dataset_versions",
    "datasets",
    "events",
    "experiment_tags",
    "experiments",
    "grants",
    "idempotency_keys",
    "latest_metrics",
    "lineage",
    "logged_model_params",
    "logged_model_tags",
    "logged_models",
    "metadata",
    "metrics",
    "model_artifacts",
    "model_version_tags",
    "model_versions",
    "params",
    "promotion_decisions",
    "promotion_policies",
    "promotion_requests",
    "registered_model_aliases",
    "registered_model_tags",
    "registered_models",
    "run_artifacts",
    "run_summaries",
    "runs",
    "schedule_fires",
    "schedules",
    "tags",
    "users",
    "workspace_meta",
]

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants 64 bits for a log.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

workspace_meta = Table(
    "workspace_meta",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("time_ms", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(128), nullable=False),
    Column("object_kind", String(64), nullable=False),
    Column("object_id", String(256), nullable=False),
    Column("details", Text, nullable=False, server_default="{}"),
    Index(None, "object_kind", "object_id", "id"),
    Index(None, "action", "id"),
    Index(None, "time_ms"),
)

lineage = Table(
    "lineage",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source_kind", String(64), nullable=False),
    Column("source_id", String(256), nullable=False),
    Column("target_kind", String(64), nullable=False),
    Column("target_id", String(256), nullable=False),
    Column("relation", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("source_kind", "source_id", "target_kind", "target_id", "relation"),
    Index(None, "target_kind", "target_id"),
)

blob_refs = Table(
    "blob_refs",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("owner_kind", String(64), primary_key=True),
    Column("owner_id", String(256), primary_key=True),
    Column("kind", String(16), nullable=False, server_default="file"),
    Column("created_ms", BigInteger, nullable=False),
    Index(None, "owner_kind", "owner_id"),
)

# -- tracking (migration 0002) ------------------------------------------------------------------

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        BigId,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("experiment_id", BigId, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("run_name", String(250), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("artifact_uri", Text, nullable=False),
    Column("parent_run_id", String(32), nullable=True),
    Column("deleted_time", BigInteger, nullable=True),
    Index(None, "experiment_id", "lifecycle_stage", "start_time"),
    Index(None, "parent_run_id"),
)


def _run_fk() -> ForeignKey:
    return ForeignKey("runs.run_id", ondelete="CASCADE")


params = Table(
    "params",
    metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    # Migration 0003: (key, value, run_id) on SQLite, (key, run_id) on PostgreSQL.
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    # Migration 0003: (key, value, run_id) on SQLite, (key, run_id) on PostgreSQL.
)

# Every logged point. The primary key makes a retried write of the same point a no-op.
metrics = Table(
    "metrics",
    metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("timestamp", BigInteger, primary_key=True),
    Column("value", Float(precision=53), primary_key=True),
    Column("is_nan", Boolean, primary_key=True),
)

# One row per (run, key): the point with the highest (step, timestamp); what search filters on.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float(precision=53), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Index(None, "key", "value", "is_nan", "run_id"),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# -- run summaries (migration 0004) -------------------------------------------------------------

# One row per run: its params, latest metrics and tags as one JSON document, rebuilt from the
# tables above in every transaction that changes them. Search reads a page of runs with one
# primary-key lookup each instead of three table scans' worth of rows.
run_summaries = Table(
    "run_summaries",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("data", Text, nullable=False),
)

# -- server: users, tokens, grants, idempotency (migration 0006) --------------------------------

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("password_hash", Text, nullable=True),
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_ms", BigInteger, nullable=False),
)

# Only a hash of each token is kept; the secret exists on the client alone.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("last4", String(4), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger, nullable=True),
)

# Role of a user (or '*', everyone) on one object: an experiment or a registered model.
grants = Table(
    "grants",
    metadata,
    Column("user_name", String(128), primary_key=True),
    Column("object_kind", String(32), primary_key=True),
    Column("object_id", String(256), primary_key=True),
    Column("role", Integer, nullable=False),
    Index(None, "object_kind", "object_id"),
)

# First response to each Idempotency-Key, replayed to a client retrying the same request.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("scope", String(256), primary_key=True),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index(None, "created_ms"),
)

# -- registry: registered models, model versions, logged models (migration 0005) ---------------

# A surrogate key, so a rename touches one row and children never follow a changing name.
# ``last_version`` is the per-model counter versions are numbered from: bumping it locks the
# model's row, so concurrent creators get 1, 2, 3... with no gaps or duplicates, and a deleted
# version's number is never handed out again (as MLflow).
registered_models = Table(
    "registered_models",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Column("last_version", Integer, nullable=False, server_default="0"),
    Index(None, "last_updated_timestamp"),
)


def _registered_model_fk() -> ForeignKey:
    return ForeignKey("registered_models.id", ondelete="CASCADE")


registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("registered_model_id", BigId, _registered_model_fk(), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("registered_model_id", BigId, _registered_model_fk(), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("run_link", Text, nullable=True),
    Column("model_id", String(64), nullable=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("user_id", String(256), nullable=False, server_default=""),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=False, server_default=""),
    Column("current_stage", String(32), nullable=False),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    # Migration 0007: the manifest of the version's files when it was registered.
    Column("files_digest", String(64), nullable=True),
    # Migration 0009: the semantic label and what the version came from (JSON).
    Column("version_label", String(32), nullable=False, server_default=""),
    Column("provenance", Text, nullable=True),
    Index(None, "run_id"),
    Index(None, "model_id"),
)


def _model_version_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["registered_model_id", "version"],
        ["model_versions.registered_model_id", "model_versions.version"],
        ondelete="CASCADE",
    )


model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("registered_model_id", BigId, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    _model_version_fk(),
)

# The cascade from model_versions drops a version's aliases with it.
registered_model_aliases = Table(
    "registered_model_aliases",
    metadata,
    Column("registered_model_id", BigId, primary_key=True),
    Column("alias", String(256), primary_key=True),
    Column("version", Integer, nullable=False),
    _model_version_fk(),
)

# Migration 0008: every move of an alias (who, when, why, from which version), append-only, so
# promotions can be audited and rolled back.
alias_history = Table(
    "alias_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "registered_model_id",
        BigId,
        ForeignKey("registered_models.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("alias", String(256), nullable=False),
    Column("version", Integer, nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("time_ms", BigInteger, nullable=False),
    Index(None, "registered_model_id", "alias", "id"),
)

# Migration 0009: promotion policies set through the API (loopline.toml holds the others),
# promotion requests waiting for approval, and each approver's decision (one per actor).
promotion_policies = Table(
    "promotion_policies",
    metadata,
    Column("registered_model_id", BigId, _registered_model_fk(), primary_key=True),
    Column("alias", String(256), primary_key=True),
    Column("policy", Text, nullable=False),
    Column("updated_by", String(256), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

promotion_requests = Table(
    "promotion_requests",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("registered_model_id", BigId, nullable=False),
    Column("version", Integer, nullable=False),
    Column("alias", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("requested_by", String(256), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("expected_version", Integer, nullable=True),
    Column("required_approvals", Integer, nullable=False),
    Column("approver_role", String(16), nullable=False),
    Column("checks", Text, nullable=False, server_default="[]"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    _model_version_fk(),
    Index(None, "registered_model_id", "state"),
)

promotion_decisions = Table(
    "promotion_decisions",
    metadata,
    Column(
        "request_id",
        BigId,
        ForeignKey("promotion_requests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("actor", String(256), primary_key=True),
    Column("approved", Boolean, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("time_ms", BigInteger, nullable=False),
)

# MLflow 3 logged models: what log_model creates (PENDING) before uploading its files.
logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column("experiment_id", BigId, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("source_run_id", String(32), nullable=True),
    Column("model_type", String(256), nullable=True),
    Column("status", String(16), nullable=False),
    Column("status_message", Text, nullable=False, server_default=""),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    # Named: the generated name would pass PostgreSQL's 63-character identifier limit.
    Index(
        "ix_logged_models_experiment_stage_created",
        "experiment_id",
        "lifecycle_stage",
        "creation_timestamp",
    ),
    Index(None, "source_run_id"),
)


def _logged_model_fk() -> ForeignKey:
    return ForeignKey("logged_models.model_id", ondelete="CASCADE")


logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column("model_id", String(64), _logged_model_fk(), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column("model_id", String(64), _logged_model_fk(), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# A logged model's files, as run_artifacts for runs; blob_refs (owner_kind 'logged_model')
# keeps their blobs alive through GC.
model_artifacts = Table(
    "model_artifacts",
    metadata,
    Column("model_id", String(64), _logged_model_fk(), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)


# -- datasets (migration 0010) ------------------------------------------------------------------
# A dataset version is a manifest blob (path, size, digest per file); the row records it and
# what describes it. Its blobs are referenced in blob_refs as owner ("dataset_version",
# "<name>@<version>"), the same reference lineage uses.
datasets = Table(
    "datasets",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("last_version", Integer, nullable=False, server_default="0"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column(
        "dataset_id",
        BigId,
        ForeignKey("datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("file_count", BigInteger, nullable=False),
    Column("total_size", BigInteger, nullable=False),
    Column("row_count", BigInteger, nullable=True),
    Column("schema", Text, nullable=True),
    Column("profile_digest", String(64), nullable=True),
    Column("tags", Text, nullable=False, server_default="{}"),
    Column("message", Text, nullable=False, server_default=""),
    Column("created_by", String(256), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index(None, "digest"),
)


# -- schedules and their fires (migration 0011) -------------------------------------------------
# A schedule's cursor is how far its trigger has been consumed: the last fired scheduled time in
# ms (cron), the last seen dataset version (dataset) or event id (alert). It moves forward in
# the transaction that records a fire, so a restarted scheduler resumes where the last one
# stopped (and is reset to "now" when a disabled schedule is enabled again).
# ``event_floor_id``: alert events at or below it (before the schedule existed or while it was
# disabled) never fire, also when the scheduler looks back for late-committed events.
schedules = Table(
    "schedules",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("target", String(512), nullable=False),
    Column("params", Text, nullable=False, server_default="{}"),
    Column("kind", String(16), nullable=False),
    Column("cron", String(256), nullable=True),
    Column("dataset", String(200), nullable=True),
    Column("alert", String(256), nullable=True),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("catch_up", String(8), nullable=False, server_default="latest"),
    Column("enabled", Boolean, nullable=False),
    Column("cursor_ms", BigInteger, nullable=True),
    Column("cursor_version", BigInteger, nullable=True),
    Column("cursor_event_id", BigInteger, nullable=True),
    Column("event_floor_id", BigInteger, nullable=True),
    Column("created_by", String(256), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# One row per firing. UNIQUE (schedule_id, fire_key) is the restart- and race-safety: a cron
# slot, dataset version, alert event or manual request is recorded once, whoever tries again.
# AUTOINCREMENT on SQLite: a fire id (tagged on the runs it launched) is never handed out twice.
schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "schedule_id",
        BigId,
        ForeignKey("schedules.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("fire_key", String(300), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("scheduled_ms", BigInteger, nullable=False),
    Column("params", Text, nullable=False, server_default="{}"),
    Column("details", Text, nullable=False, server_default="{}"),
    Column("status", String(16), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("owner", String(256), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("schedule_id", "fire_key"),
    Index(None, "status", "lease_until_ms"),
    sqlite_autoincrement=True,
)
