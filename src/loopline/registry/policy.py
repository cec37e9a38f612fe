"""Promotion policies: which aliases of a registered model need approval before they move, how
many approvers of which role, and which checks the version must pass.

A policy is plain data, set per (model, alias) through the API or in ``loopline.toml``::

    [[promotion_policies]]
    model = "fraud"            # or "*" for every registered model
    alias = "production"
    approvals = 2              # distinct approvers, never the requester (unless allowed)
    approver_role = "admin"    # reader | editor | admin, checked when the server runs --auth
    checks = [{ metric = "auc", min = 0.8 }]

A policy stored through the API wins over the file for the same model and alias; a policy for
the named model wins over one for ``*``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from loopline.errors import InvalidInput
from loopline.registry.entities import CheckResult

__all__ = ["MetricCheck", "PromotionPolicy", "evaluate_checks", "parse_policy", "pick_policy"]

_ROLES = ("reader", "editor", "admin")


class MetricCheck(BaseModel):
    """The version passes when ``metric`` lies within [min, max]. The metric is read from the
    version's source run, or, with ``evaluation``, from the newest run tagged
    ``loopline.evaluation = <evaluation>`` and ``loopline.model_version = <name>/<version>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str = Field(min_length=1, max_length=250)
    min: float | None = None
    max: float | None = None
    evaluation: str | None = Field(default=None, min_length=1, max_length=250)

    @model_validator(mode="after")
    def _bounds(self) -> MetricCheck:
        if self.min is None and self.max is None:
            raise ValueError("a check needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self

    def describe(self) -> str:
        where = f" on evaluation {self.evaluation!r}" if self.evaluation else ""
        bounds = []
        if self.min is not None:
            bounds.append(f">= {self.min:g}")
        if self.max is not None:
            bounds.append(f"<= {self.max:g}")
        return f"{self.metric} {' and '.join(bounds)}{where}"


class PromotionPolicy(BaseModel):
    """What moving ``alias`` of ``model`` requires."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(default="*", min_length=1)
    alias: str = Field(min_length=1)
    approvals: int = Field(default=1, ge=0, le=100)
    approver_role: str = "editor"
    allow_self_approval: bool = False
    checks: tuple[MetricCheck, ...] = ()

    @field_validator("approver_role")
    @classmethod
    def _role(cls, value: str) -> str:
        if value.lower() not in _ROLES:
            raise ValueError(f"must be one of {', '.join(_ROLES)}, got {value!r}")
        return value.lower()

    @property
    def needs_approval(self) -> bool:
        return self.approvals > 0

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def parse_policy(data: Mapping[str, Any], where: str = "promotion policy") -> PromotionPolicy:
    """A policy from plain data, with errors naming the field (``checks.0.min``) and problem."""
    if isinstance(data, PromotionPolicy):
        return data
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{where} must be a mapping, got {type(data).__name__}")
    try:
        return PromotionPolicy.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "policy"
        raise InvalidInput(f"{where}: field {field!r}: {first['msg']}") from None


def pick_policy(
    stored: Iterable[PromotionPolicy], configured: Iterable[PromotionPolicy], name: str, alias: str
) -> PromotionPolicy | None:
    """The policy governing ``alias`` of ``name``: stored before configured, the exact model
    before ``*``."""
    for source in (list(stored), list(configured)):
        for model in (name, "*"):
            for policy in source:
                if policy.model == model and policy.alias == alias:
                    return policy
    return None


def evaluate_checks(
    policy: PromotionPolicy, metrics_for: Any, name: str, version: int
) -> list[CheckResult]:
    """Each check of ``policy`` against the version. ``metrics_for(evaluation | None)`` returns
    the metrics (key -> value) of the source run or of the named evaluation."""
    cache: dict[str | None, Mapping[str, float]] = {}
    results = []
    for check in policy.checks:
        if check.evaluation not in cache:
            cache[check.evaluation] = metrics_for(check.evaluation) or {}
        observed = cache[check.evaluation].get(check.metric)
        if observed is None or (isinstance(observed, float) and math.isnan(observed)):
            where = f"evaluation {check.evaluation!r}" if check.evaluation else "the source run"
            detail = f"{check.metric} was not logged for {name}/{version} in {where}"
            results.append(CheckResult(check.describe(), False, None, detail))
            continue
        ok = (check.min is None or observed >= check.min) and (
            check.max is None or observed <= check.max
        )
        detail = f"{check.metric} = {observed:g}"
        results.append(CheckResult(check.describe(), ok, float(observed), detail))
    return results
