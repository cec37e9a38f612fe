"""The model registry of a remote server: :class:`RegistryService`'s interface over HTTP.

Registered models, versions, tags and aliases go through the native API
(:mod:`loopline.server.native_registry`) and come back as the same entities the in-process
service returns. Names, versions and aliases are checked here before they become URL path
segments: an empty name or one holding '/' would otherwise address a different route, and the
answer would be a confusing 404 instead of the service's own InvalidInput.

Logged models and their files are not served by the native API yet; those calls raise
:class:`ConfigError` naming the alternatives.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

from loopline.client.http import HttpTransport
from loopline.errors import ConfigError
from loopline.registry.entities import (
    AliasMove,
    CheckResult,
    ModelVersion,
    PromotionDecision,
    PromotionRequest,
    RegisteredModel,
)
from loopline.registry.policy import PromotionPolicy, parse_policy
from loopline.registry.validation import (
    check_alias,
    check_model_name,
    check_request_id,
    check_version,
)
from loopline.registry.versioning import check_label
from loopline.tracking.store import ArtifactRow, write_rows

__all__ = ["RemoteRegistryService"]


def _q(value: str) -> str:
    return quote(str(value), safe="")


def version_from(d: dict[str, Any]) -> ModelVersion:
    return ModelVersion(**d)


def request_from(d: dict[str, Any]) -> PromotionRequest:
    return PromotionRequest(
        **{
            **d,
            "checks": [CheckResult(**c) for c in d.get("checks", [])],
            "decisions": [PromotionDecision(**x) for x in d.get("decisions", [])],
        }
    )


def model_from(d: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        **{**d, "latest_versions": [version_from(v) for v in d.get("latest_versions", [])]}
    )


def _model_path(name: str) -> str:
    return f"/api/v1/registered-models/{_q(check_model_name(name))}"


def _version_path(name: str, version: int | str) -> str:
    return f"{_model_path(name)}/versions/{check_version(version)}"


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}


def _key(key: str) -> str:
    """A tag key as a path segment (keys may hold '/': the routes take the rest of the path)."""
    return quote(str(key), safe="/")


class RemoteRegistryService:
    def __init__(self, transport: HttpTransport, actor: str) -> None:
        self.http = transport
        self.actor = actor

    # -- registered models -------------------------------------------------------------------
    def create_registered_model(
        self, name: str, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        body = {"name": check_model_name(name), "description": description, "tags": _tags(tags)}
        return model_from(self.http.call("POST", "/api/v1/registered-models", body))

    def get_registered_model(self, name: str) -> RegisteredModel:
        return model_from(self.http.call("GET", _model_path(name)))

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return model_from(
            self.http.call("POST", f"{_model_path(name)}/rename", {"new_name": new_name})
        )

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        return model_from(self.http.call("PATCH", _model_path(name), {"description": description}))

    def delete_registered_model(self, name: str) -> None:
        self.http.call("DELETE", _model_path(name))

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.http.call("PUT", f"{_model_path(name)}/tags/{_key(key)}", {"value": str(value)})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.http.call("DELETE", f"{_model_path(name)}/tags/{_key(key)}")

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[RegisteredModel], str | None]:
        params = {
            "filter": filter_string,
            "max_results": max_results,
            "order_by": list(order_by or []) or None,
            "page_token": page_token,
        }
        answer = self.http.call("GET", "/api/v1/registered-models", params=params)
        return [model_from(m) for m in answer["registered_models"]], answer.get("next_page_token")

    # -- model versions ----------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
        user_id: str | None = None,
        version_label: str | None = None,
    ) -> ModelVersion:
        body = {
            "version_label": check_label(version_label) if version_label is not None else None,
            "source": source,
            "run_id": run_id,
            "tags": _tags(tags),
            "run_link": run_link,
            "description": description,
            "model_id": model_id,
            "user_id": user_id or self.actor,
        }
        return version_from(self.http.call("POST", f"{_model_path(name)}/versions", body))

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return version_from(self.http.call("GET", _version_path(name, version)))

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        return version_from(
            self.http.call("PATCH", _version_path(name, version), {"description": description})
        )

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        body = {"stage": stage, "archive_existing_versions": bool(archive_existing_versions)}
        return version_from(self.http.call("POST", f"{_version_path(name, version)}/stage", body))

    def delete_model_version(self, name: str, version: int | str) -> None:
        self.http.call("DELETE", _version_path(name, version))

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        self.http.call(
            "PUT", f"{_version_path(name, version)}/tags/{_key(key)}", {"value": str(value)}
        )

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self.http.call("DELETE", f"{_version_path(name, version)}/tags/{_key(key)}")

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[ModelVersion], str | None]:
        params = {
            "filter": filter_string,
            "max_results": max_results,
            "order_by": list(order_by or []) or None,
            "page_token": page_token,
        }
        answer = self.http.call("GET", "/api/v1/model-versions", params=params)
        return [version_from(v) for v in answer["model_versions"]], answer.get("next_page_token")

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        params = {"stages": list(stages) if stages else None}
        answer = self.http.call("GET", f"{_model_path(name)}/latest-versions", params=params)
        return [version_from(v) for v in answer]

    # -- aliases -----------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int | str, *, reason: str = "") -> None:
        self.http.call(
            "PUT",
            f"{_model_path(name)}/aliases/{_q(check_alias(alias))}",
            {"version": check_version(version), "reason": reason},
        )

    def promote(
        self,
        name: str,
        version: int | str,
        alias: str,
        *,
        reason: str = "",
        expected_current: int | str | None = "any",
    ) -> AliasMove | PromotionRequest:
        body = {
            "version": check_version(version),
            "reason": reason,
            "expected_current": expected_current
            if expected_current in (None, "any")
            else check_version(expected_current),  # type: ignore[arg-type]
        }
        url = f"{_model_path(name)}/aliases/{_q(check_alias(alias))}/promote"
        answer = self.http.call("POST", url, body)
        if answer["applied"]:
            return AliasMove(**answer["move"])
        return request_from(answer["request"])

    def approve(self, request_id: int | str, *, comment: str = "") -> PromotionRequest:
        url = f"/api/v1/promotion-requests/{check_request_id(request_id)}/approve"
        return request_from(self.http.call("POST", url, {"comment": comment}))

    def reject(self, request_id: int | str, *, comment: str = "") -> PromotionRequest:
        url = f"/api/v1/promotion-requests/{check_request_id(request_id)}/reject"
        return request_from(self.http.call("POST", url, {"comment": comment}))

    def get_promotion_request(self, request_id: int | str) -> PromotionRequest:
        url = f"/api/v1/promotion-requests/{check_request_id(request_id)}"
        return request_from(self.http.call("GET", url))

    def list_promotion_requests(
        self,
        name: str | None = None,
        *,
        version: int | str | None = None,
        state: str | None = None,
    ) -> list[PromotionRequest]:
        params = {
            "name": check_model_name(name) if name is not None else None,
            "version": check_version(version) if version is not None else None,
            "state": state,
        }
        answer = self.http.call("GET", "/api/v1/promotion-requests", params=params)
        return [request_from(r) for r in answer["requests"]]

    def set_promotion_policy(
        self, name: str, policy: PromotionPolicy | Mapping[str, Any]
    ) -> PromotionPolicy:
        data = policy.to_dict() if isinstance(policy, PromotionPolicy) else dict(policy)
        parsed = parse_policy({**data, "model": check_model_name(name)})
        url = f"{_model_path(name)}/policies/{_q(check_alias(parsed.alias))}"
        return parse_policy(self.http.call("PUT", url, parsed.to_dict()))

    def delete_promotion_policy(self, name: str, alias: str) -> None:
        self.http.call("DELETE", f"{_model_path(name)}/policies/{_q(check_alias(alias))}")

    def promotion_policies(self, name: str) -> list[PromotionPolicy]:
        answer = self.http.call("GET", f"{_model_path(name)}/policies")
        return [parse_policy(p) for p in answer["policies"]]

    def policy_for(self, name: str, alias: str) -> PromotionPolicy | None:
        return next((p for p in self.promotion_policies(name) if p.alias == alias), None)

    def rollback(self, name: str, alias: str, *, reason: str = "") -> AliasMove:
        url = f"{_model_path(name)}/aliases/{_q(check_alias(alias))}/rollback"
        return AliasMove(**self.http.call("POST", url, {"reason": reason}))

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        params = {"alias": check_alias(alias) if alias is not None else None}
        answer = self.http.call("GET", f"{_model_path(name)}/alias-history", params=params)
        return [AliasMove(**m) for m in answer["moves"]]

    def delete_alias(self, name: str, alias: str, *, reason: str = "") -> None:
        self.http.call(
            "DELETE",
            f"{_model_path(name)}/aliases/{_q(check_alias(alias))}",
            params={"reason": reason or None},
        )

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return version_from(
            self.http.call("GET", f"{_model_path(name)}/aliases/{_q(check_alias(alias))}")
        )

    # -- a version's files -----------------------------------------------------------------------
    def version_files(self, name: str, version: int | str) -> list[ArtifactRow]:
        answer = self.http.call("GET", f"{_version_path(name, version)}/files")
        return [ArtifactRow(**row) for row in answer["files"]]

    def download_version(self, name: str, version: int | str, dst: str | os.PathLike[str]) -> Path:
        """The version's pinned files into ``dst``, each verified against its digest."""
        files = f"{_version_path(name, version)}/files/"

        def fetch(row: ArtifactRow, target: Path) -> None:
            self.http.download_to(files + quote(row.path, safe="/"), target, row.digest)

        rows = self.version_files(name, version)
        return write_rows(rows, Path(dst), fetch, what="model file path")

    # -- logged models and their files: not served by the native API yet ---------------------
    def _not_served(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ConfigError(
            "logged models and their files are not available through the server yet; use "
            "the MLflow client against the server (MLFLOW_TRACKING_URI) or work in-process"
        )

    create_logged_model = _not_served
    get_logged_model = _not_served
    finalize_logged_model = _not_served
    set_logged_model_tags = _not_served
    delete_logged_model_tag = _not_served
    log_logged_model_params = _not_served
    delete_logged_model = _not_served
    search_logged_models = _not_served
    log_model_artifact_stream = _not_served
    list_model_artifacts = _not_served
    model_artifact_files = _not_served
    open_model_artifact = _not_served
