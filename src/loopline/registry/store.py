"""The model registry store contract. Conventions as in :mod:`loopline.store.base`: ``get_*``
raises NotFound, never returns None; ``create_*`` of a taken name raises AlreadyExists; every
method is one transaction. Inputs arrive validated by :class:`RegistryService`; the store
enforces only what needs the database to decide (existence, uniqueness, numbering)."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from loopline.registry.entities import (
    AliasMove,
    CheckResult,
    LoggedModel,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
)
from loopline.tracking.search_filter import Compare, OrderKey
from loopline.tracking.store import ArtifactRow

__all__ = ["ANY_VERSION", "NewModelVersion", "Page", "RegistryStore"]

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_offset: int | None
    """Offset of the next page, ``None`` on the last page."""


ANY_VERSION = "any"
"""``expected`` for :meth:`RegistryStore.set_alias`: move the alias wherever it points."""


@dataclass(frozen=True)
class NewModelVersion:
    """What a caller supplies for a version; the store numbers and timestamps it."""

    source: str
    run_id: str | None = None
    run_link: str | None = None
    model_id: str | None = None
    description: str = ""
    user_id: str = ""
    tags: Mapping[str, str] | None = None
    version_label: str = ""
    provenance: Mapping[str, Any] | None = None
    files_digest: str | None = None
    """Manifest digest of the version's files; with ``file_digests``, referenced (kept from
    garbage collection) for as long as the version exists."""
    file_digests: tuple[str, ...] = ()


class RegistryStore(abc.ABC):
    # -- registered models -------------------------------------------------------------------
    @abc.abstractmethod
    def create_registered_model(
        self, name: str, description: str, tags: Mapping[str, str]
    ) -> RegisteredModel:
        """AlreadyExists if the name is taken."""

    @abc.abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """NotFound if no model has this name. ``latest_versions`` holds the newest version of
        each stage."""

    @abc.abstractmethod
    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Versions, tags and aliases follow. NotFound / AlreadyExists if ``new_name`` is taken."""

    @abc.abstractmethod
    def update_registered_model(self, name: str, description: str) -> RegisteredModel: ...

    @abc.abstractmethod
    def delete_registered_model(self, name: str) -> None:
        """Hard delete, with its versions, tags and aliases."""

    @abc.abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """NotFound for an unknown model; a missing tag is a no-op (as MLflow)."""

    @abc.abstractmethod
    def search_registered_models(
        self,
        filters: Sequence[Compare],
        order_by: Sequence[OrderKey],
        max_results: int,
        offset: int = 0,
    ) -> Page[RegisteredModel]:
        """Default order: name ascending. Ties broken by name, so pages never overlap."""

    # -- model versions ----------------------------------------------------------------------
    @abc.abstractmethod
    def create_model_version(self, name: str, new: NewModelVersion) -> ModelVersion:
        """Numbered one past the model's highest number ever issued (1 for the first), also
        under concurrent creators; status READY, stage None. NotFound for an unknown model."""

    @abc.abstractmethod
    def get_model_version(self, name: str, version: int) -> ModelVersion: ...

    @abc.abstractmethod
    def update_model_version(self, name: str, version: int, description: str) -> ModelVersion: ...

    @abc.abstractmethod
    def transition_model_version_stage(
        self, name: str, version: int, stage: str, archive_existing_versions: bool
    ) -> ModelVersion:
        """With ``archive_existing_versions``, every other version in ``stage`` moves to
        Archived in the same transaction."""

    @abc.abstractmethod
    def delete_model_version(self, name: str, version: int) -> None:
        """Hard delete, with its tags and the aliases pointing at it."""

    @abc.abstractmethod
    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """NotFound for an unknown version; a missing tag is a no-op (as MLflow)."""

    @abc.abstractmethod
    def search_model_versions(
        self,
        filters: Sequence[Compare],
        order_by: Sequence[OrderKey],
        max_results: int,
        offset: int = 0,
    ) -> Page[ModelVersion]:
        """Default order: name ascending, then version descending."""

    @abc.abstractmethod
    def get_latest_versions(self, name: str, stages: Sequence[str]) -> list[ModelVersion]:
        """The highest version in each of ``stages`` that has one, in ``stages`` order."""

    # -- aliases -----------------------------------------------------------------------------
    @abc.abstractmethod
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str = "",
        reason: str = "",
        expected: int | str | None = ANY_VERSION,
    ) -> AliasMove:
        """Point ``alias`` at ``version``, moving it if it pointed elsewhere, and append the move
        to the alias history, in one transaction. NotFound if the version does not exist. With
        ``expected`` (a version, or None for "unset"), Conflict unless the alias still points
        there: a compare-and-set, so of two concurrent promotions exactly one wins."""

    @abc.abstractmethod
    def delete_alias(self, name: str, alias: str, *, actor: str = "", reason: str = "") -> None:
        """NotFound for an unknown model; an unset alias is a no-op (as MLflow)."""

    @abc.abstractmethod
    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Moves of ``alias`` (or every alias), oldest first."""

    @abc.abstractmethod
    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """NotFound if the alias is not set."""

    # -- promotion policies and requests -----------------------------------------------------
    @abc.abstractmethod
    def set_promotion_policy(self, name: str, alias: str, policy: str, actor: str) -> None:
        """Store (replace) the policy, as JSON text, for ``alias`` of ``name``."""

    @abc.abstractmethod
    def delete_promotion_policy(self, name: str, alias: str) -> None:
        """A missing policy is a no-op; NotFound for an unknown model."""

    @abc.abstractmethod
    def promotion_policies(self, name: str) -> dict[str, str]:
        """alias -> policy JSON, for the policies stored for ``name``."""

    @abc.abstractmethod
    def create_promotion_request(
        self,
        name: str,
        version: int,
        alias: str,
        *,
        requested_by: str,
        reason: str,
        required_approvals: int,
        approver_role: str,
        checks: Sequence[CheckResult],
    ) -> PromotionRequest:
        """A PENDING request that remembers where the alias points now (its compare-and-set
        expectation). NotFound if the version does not exist."""

    @abc.abstractmethod
    def get_promotion_request(self, request_id: int) -> PromotionRequest: ...

    @abc.abstractmethod
    def list_promotion_requests(
        self,
        name: str | None = None,
        *,
        version: int | None = None,
        state: str | None = None,
    ) -> list[PromotionRequest]:
        """Oldest first."""

    @abc.abstractmethod
    def decide_promotion(
        self,
        request_id: int,
        *,
        actor: str,
        approved: bool,
        comment: str,
        move_reason: str,
    ) -> tuple[PromotionRequest, AliasMove | None]:
        """Record ``actor``'s decision, in one transaction with its consequence: a rejection
        ends the request; the approval that reaches ``required_approvals`` moves the alias
        (APPLIED), unless the alias left the expected version meanwhile (STALE, no move).
        Conflict if the request is not pending or ``actor`` already decided."""

    # -- logged models -----------------------------------------------------------------------
    @abc.abstractmethod
    def create_logged_model(self, model: LoggedModel) -> None:
        """NotFound if the experiment does not exist; InvalidInput if it is deleted."""

    @abc.abstractmethod
    def get_logged_model(self, model_id: str) -> LoggedModel:
        """NotFound if no logged model has this id (deleted ones are returned)."""

    @abc.abstractmethod
    def update_logged_model(
        self,
        model_id: str,
        *,
        status: str | None = None,
        status_message: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> LoggedModel: ...

    @abc.abstractmethod
    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None: ...

    @abc.abstractmethod
    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """NotFound if the model has no such tag."""

    @abc.abstractmethod
    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        """Re-logging a param with the same value is a no-op; another value raises Conflict
        and nothing is stored (params are immutable, as for runs)."""

    @abc.abstractmethod
    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filters: Sequence[Compare],
        order_by: Sequence[OrderKey],
        include_deleted: bool,
        max_results: int,
        offset: int = 0,
    ) -> Page[LoggedModel]:
        """Default order: newest first, then model_id."""

    # -- logged-model files ------------------------------------------------------------------
    @abc.abstractmethod
    def add_model_artifacts(self, model_id: str, artifacts: Sequence[ArtifactRow]) -> None:
        """Record files (replacing a path logged before) and reference their blobs, so GC keeps
        them. NotFound for an unknown model; InvalidInput if it is deleted."""

    @abc.abstractmethod
    def list_model_artifacts(self, model_id: str, prefix: str = "") -> list[ArtifactRow]:
        """Every file under ``prefix`` (a directory path, or '' for all), ordered by path."""
