"""Request and response bodies of the native REST API (``/api/v1``).

Responses reuse the service entities (dataclasses) where they are already the right shape; the
models here are what only the wire needs: request bodies and paged envelopes.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from loopline.registry.entities import AliasMove, ModelVersion, PromotionRequest, RegisteredModel
from loopline.registry.policy import PromotionPolicy
from loopline.tracking.entities import ArtifactInfo, Experiment, RunInfo, ViewType
from loopline.tracking.store import ArtifactRow

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "AliasBody",
    "AliasHistoryOut",
    "ArtifactFilesPage",
    "ArtifactsPage",
    "BatchBody",
    "CreateExperimentBody",
    "CreateModelVersionBody",
    "CreateRegisteredModelBody",
    "CreateRunBody",
    "DecisionBody",
    "DescriptionBody",
    "ExperimentIdOut",
    "ExperimentsPage",
    "GrantBody",
    "KeyValue",
    "MetricHistoryPage",
    "MetricIn",
    "MetricOut",
    "ModelVersionsPage",
    "NameBody",
    "NewNameBody",
    "PoliciesOut",
    "PromoteBody",
    "PromotionOut",
    "PromotionRequestsOut",
    "PurgeBody",
    "RegisteredModelsPage",
    "RollbackBody",
    "RunIdsOut",
    "RunOut",
    "RunsPage",
    "SearchRunsBody",
    "StageBody",
    "TagValueBody",
    "UpdateRunBody",
]


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""Integers the metadata database stores (BIGINT): larger ones are refused as invalid input
instead of overflowing in the database driver."""


def _wire_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


WireFloat = Annotated[
    float, PlainSerializer(_wire_float, return_type=float | str, when_used="json")
]
"""A float on the wire: JSON has no NaN or infinities, so those travel as "NaN", "Infinity" and
"-Infinity" (what protobuf's JSON mapping, and so MLflow, does)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    # Built straight from the service's dataclasses.
    model_config = ConfigDict(from_attributes=True)


class KeyValue(_Body):
    key: str = Field(min_length=1, max_length=250)
    value: str = Field(max_length=8000)


class MetricIn(_Body):
    key: str = Field(min_length=1, max_length=250)
    value: float | None = Field(
        description='a number, or "NaN", "Infinity", "-Infinity" (null also means NaN)'
    )
    timestamp: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    step: int = Field(default=0, ge=INT64_MIN, le=INT64_MAX)


class CreateExperimentBody(_Body):
    name: str = Field(min_length=1, max_length=256)
    artifact_location: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class NameBody(_Body):
    name: str = Field(min_length=1, max_length=256)


class TagValueBody(_Body):
    value: str = Field(max_length=8000)


class ExperimentIdOut(_Out):
    experiment_id: str


class ExperimentsPage(_Out):
    experiments: list[Experiment]
    next_page_token: str | None = None


class CreateRunBody(_Body):
    experiment_id: str = "0"
    run_name: str | None = Field(default=None, max_length=250)
    tags: dict[str, str] = Field(default_factory=dict)
    start_time: int | None = Field(default=None, ge=0, le=INT64_MAX)
    parent_run_id: str | None = None
    user_id: str | None = Field(default=None, max_length=256)


class UpdateRunBody(_Body):
    status: str | None = None
    end_time: int | None = Field(default=None, ge=0, le=INT64_MAX)
    run_name: str | None = Field(default=None, max_length=250)


class BatchBody(_Body):
    metrics: list[MetricIn] = Field(default_factory=list, max_length=100_000)
    params: list[KeyValue] = Field(default_factory=list, max_length=10_000)
    tags: list[KeyValue] = Field(default_factory=list, max_length=10_000)


class SearchRunsBody(_Body):
    experiment_ids: list[str] = Field(default_factory=list)
    experiment_names: list[str] = Field(default_factory=list)
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    max_results: int = Field(default=1000, ge=1)
    view: ViewType = ViewType.ACTIVE_ONLY
    page_token: str | None = None


class MetricOut(_Out):
    key: str
    value: WireFloat
    timestamp: int
    step: int


class RunOut(_Out):
    info: RunInfo
    params: dict[str, str]
    metrics: dict[str, WireFloat] = Field(description="latest value of each metric")
    tags: dict[str, str]


class RunsPage(_Out):
    runs: list[RunOut]
    next_page_token: str | None = None


class MetricHistoryPage(_Out):
    metrics: list[MetricOut]
    next_page_token: str | None = None


class ArtifactsPage(_Out):
    files: list[ArtifactInfo]
    next_page_token: str | None = None


class ArtifactFilesPage(_Out):
    files: list[ArtifactRow]
    next_page_token: str | None = None


class PurgeBody(_Body):
    older_than_ms: int = Field(default=0, ge=0, le=INT64_MAX)


class RunIdsOut(_Out):
    run_ids: list[str]


class GrantBody(_Body):
    user: str = Field(min_length=1, max_length=128)
    role: str | None = Field(description="reader, editor, admin, or null to remove the grant")


# -- model registry -------------------------------------------------------------------------------
class CreateRegisteredModelBody(_Body):
    name: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class NewNameBody(_Body):
    new_name: str


class DescriptionBody(_Body):
    description: str | None = None


class CreateModelVersionBody(_Body):
    source: str
    run_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    run_link: str | None = None
    description: str | None = None
    model_id: str | None = None
    user_id: str | None = Field(default=None, max_length=256)
    version_label: str | None = Field(
        default=None, max_length=32, description="MAJOR.MINOR.PATCH; computed when omitted"
    )


class StageBody(_Body):
    stage: str
    archive_existing_versions: bool = False


class AliasBody(_Body):
    version: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field(default="", max_length=8000)


class PromoteBody(_Body):
    version: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field(default="", max_length=8000)
    expected_current: int | Literal["any"] | None = Field(
        default="any",
        description='the version the alias points at now (null: unset); "any" skips the check',
    )


class RollbackBody(_Body):
    reason: str = Field(default="", max_length=8000)


class PromotionOut(_Out):
    """What a promotion did: ``applied`` with the alias ``move``, or a pending ``request``
    waiting for approval (when the alias's policy asks for one)."""

    applied: bool
    move: AliasMove | None = None
    request: PromotionRequest | None = None


class DecisionBody(_Body):
    comment: str = Field(default="", max_length=8000)


class PromotionRequestsOut(_Out):
    requests: list[PromotionRequest]


class PoliciesOut(_Out):
    policies: list[PromotionPolicy]


class AliasHistoryOut(_Out):
    moves: list[AliasMove]


class RegisteredModelsPage(_Out):
    registered_models: list[RegisteredModel]
    next_page_token: str | None = None


class ModelVersionsPage(_Out):
    model_versions: list[ModelVersion]
    next_page_token: str | None = None
