"""The model registry: the one implementation behind the Python API, the CLI and the
MLflow-compatible REST routes. Validation and rules live here; storage is the
:class:`RegistryStore`'s job, bytes are the blob store's, history goes to the event log and
lineage graph.

Three nouns, as in MLflow 3:

- a *registered model* is a name with versions, tags and aliases;
- a *model version* points at a model's files (``source``) and, usually, the run and logged
  model it came from;
- a *logged model* is what ``log_model`` creates in an experiment before uploading files.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from loopline import paging
from loopline.access.entities import Role
from loopline.blobs.cas import BlobStore, Manifest, ManifestEntry
from loopline.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from loopline.events import EventLog
from loopline.lineage import LineageGraph
from loopline.paths import safe_relpath
from loopline.registry import search
from loopline.registry.entities import (
    ACTIVE_STAGES,
    AliasMove,
    LoggedModel,
    LoggedModelStatus,
    ModelVersion,
    ModelVersionStage,
    PromotionRequest,
    PromotionState,
    RegisteredModel,
)
from loopline.registry.policy import PromotionPolicy, evaluate_checks, parse_policy, pick_policy
from loopline.registry.provenance import RunFacts
from loopline.registry.store import ANY_VERSION, NewModelVersion, RegistryStore
from loopline.registry.validation import (
    check_alias,
    check_logged_model_id,
    check_model_name,
    check_request_id,
    check_stage,
    check_version,
    optional_text,
)
from loopline.registry.versioning import check_label, next_label, parse_mlmodel, signature_key
from loopline.tracking.entities import ArtifactInfo, LifecycleStage
from loopline.tracking.service import generate_run_name
from loopline.tracking.store import ArtifactRow, children_of, write_rows
from loopline.tracking.validation import check_key, check_run_id, param_value, tag_value

__all__ = ["RegistryService"]

MAX_REGISTERED_MODELS_PAGE = 1_000
MAX_MODEL_VERSIONS_PAGE = 200_000
MAX_LOGGED_MODELS_PAGE = 1_000
_MODELS_URI = re.compile(r"^models:/(m-[0-9a-f]{32})/?$")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _page_size(max_results: Any, limit: int) -> int:
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise InvalidInput(f"max_results must be a whole number, got {max_results!r}")
    if not 1 <= max_results <= limit:
        raise InvalidInput(f"max_results must be between 1 and {limit}, got {max_results}")
    return max_results


def _tags(tags: Mapping[str, Any] | None, what: str) -> dict[str, str]:
    return {check_key(k, what): tag_value(k, v) for k, v in (tags or {}).items()}


def _at(version: int | None) -> str:
    return "nothing" if version is None else f"version {version}"


def _policy_summary(policy: PromotionPolicy) -> str:
    parts = []
    if policy.needs_approval:
        parts.append(f"{policy.approvals} approval(s) by {policy.approver_role}")
    parts.extend(c.describe() for c in policy.checks)
    return ", ".join(parts) or "no requirements"


def _version_ref(name: str, version: int) -> tuple[str, str]:
    """How a model version is named in lineage and the event log."""
    return ("model_version", f"{name}/{version}")


class RegistryService:
    def __init__(
        self,
        store: RegistryStore,
        blobs: BlobStore,
        events: EventLog,
        lineage: LineageGraph,
        actor: str,
        files_of: Callable[[str], list[ArtifactRow] | None] | None = None,
        facts: RunFacts | None = None,
        policies: Sequence[PromotionPolicy] = (),
        role_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.events = events
        self.lineage = lineage
        self.actor = actor
        self.files_of = files_of
        """Source URI -> the model's files (paths relative to the model directory), or None
        for a source outside this workspace; wired by the workspace."""
        self.facts = facts
        """Provenance and evaluation metrics from tracking; None records no provenance."""
        self.policies = tuple(policies)
        """Promotion policies from configuration (``loopline.toml``)."""
        self.role_of = role_of
        """Registered model name -> the actor's role on it (reader/editor/admin or None), for
        approver checks; None when access control is off (every actor may approve)."""

    def acting_as(
        self,
        actor: str,
        events: EventLog,
        role_of: Callable[[str], str | None] | None = None,
    ) -> RegistryService:
        """The same registry acting as ``actor`` (its events, approvals and alias moves)."""
        return RegistryService(
            self.store,
            self.blobs,
            events,
            self.lineage,
            actor,
            files_of=self.files_of,
            facts=self.facts,
            policies=self.policies,
            role_of=role_of,
        )

    def _pin_files(self, source: str) -> tuple[str | None, list[ArtifactRow]]:
        """A manifest of the source's files now, stored as a blob: the version loads exactly
        these bytes later, whatever happens to the run's artifacts."""
        rows = self.files_of(source) if self.files_of is not None else None
        if not rows:
            return None, []
        manifest = Manifest(
            tuple(
                ManifestEntry(r.path, r.digest, r.size) for r in sorted(rows, key=lambda r: r.path)
            )
        )
        return self.blobs.put_bytes(manifest.to_bytes()), list(rows)

    def _signature_key(self, rows: Sequence[ArtifactRow]) -> str | None:
        """The canonical signature in the ``MLmodel`` among ``rows`` (None without one)."""
        for row in rows:
            if row.path == "MLmodel":
                text = self.blobs.read_bytes(row.digest).decode("utf-8", errors="replace")
                try:
                    return signature_key(parse_mlmodel(text).get("signature"))
                except InvalidInput:
                    return None
        return None

    def _label_for(self, name: str, files_digest: str | None, rows: Sequence[ArtifactRow]) -> str:
        """The semantic label after the newest version's (see :mod:`.versioning`)."""
        latest = self.store.get_latest_versions(name, [str(s) for s in ModelVersionStage])
        if not latest:
            return next_label(None, signature_changed=False, files_changed=True)
        previous = max(latest, key=lambda v: v.version)
        if previous.files_digest:
            manifest = self.blobs.read_manifest(previous.files_digest)
            before = [ArtifactRow(e.path, e.digest, e.size) for e in manifest.entries]
        else:
            before = (self.files_of(previous.source) if self.files_of else None) or []
        # Without pinned files on either side, only the source URI tells a change apart.
        if previous.files_digest and files_digest:
            files_changed = previous.files_digest != files_digest
        else:
            files_changed = True
        return next_label(
            previous.version_label or None,
            signature_changed=self._signature_key(before) != self._signature_key(rows),
            files_changed=files_changed,
        )

    # -- registered models -------------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> RegisteredModel:
        name = check_model_name(name)
        model = self.store.create_registered_model(
            name, optional_text(description, "description"), _tags(tags, "registered model tag")
        )
        self.events.record(None, "registered_model.created", "registered_model", name)
        return model

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(check_model_name(name))

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Versions, tags and aliases move with the model. Lineage edges recorded under the old
        name keep it: they are history."""
        name = check_model_name(name)
        new_name = check_model_name(new_name, "new registered model name")
        model = self.store.rename_registered_model(name, new_name)
        self.events.record(
            None, "registered_model.renamed", "registered_model", new_name, {"old_name": name}
        )
        return model

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        model = self.store.update_registered_model(
            check_model_name(name), optional_text(description, "description")
        )
        self.events.record(None, "registered_model.updated", "registered_model", name)
        return model

    def delete_registered_model(self, name: str) -> None:
        """Deletes the model with every version, tag and alias; the files stay (they belong to
        runs and logged models)."""
        self.store.delete_registered_model(check_model_name(name))
        self.events.record(None, "registered_model.deleted", "registered_model", name)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.store.set_registered_model_tag(
            check_model_name(name), check_key(key, "registered model tag"), tag_value(key, value)
        )

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.store.delete_registered_model_tag(
            check_model_name(name), check_key(key, "registered model tag")
        )

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[RegisteredModel], str | None]:
        """Filter grammar: ``name = | != | LIKE | ILIKE '...'`` and ``tags.<key> ...`` joined by
        AND. Order by ``name``, ``creation_timestamp`` or ``last_updated_timestamp`` (ASC/DESC);
        name ascending by default."""
        grammar = search.REGISTERED_MODEL_GRAMMAR
        page = self.store.search_registered_models(
            search.parse_filter(filter_string, grammar),
            search.parse_order_by(list(order_by or []), grammar),
            _page_size(max_results, MAX_REGISTERED_MODELS_PAGE),
            paging.offset_from_token(page_token),
        )
        return page.items, paging.page_token(page.next_offset)

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
        """Register ``source`` as the next version of ``name``. A ``models:/<model_id>`` source
        fills ``model_id``, and a logged model's source run fills ``run_id``, as MLflow 3 does.
        The version pins the source's files, snapshots its run's provenance and gets a
        semantic ``version_label`` (computed unless given)."""
        name = check_model_name(name)
        source = optional_text(source, "source")
        if not source.strip():
            raise InvalidInput("source must be a non-empty URI such as runs:/<run_id>/model")
        run_id = check_run_id(run_id) if run_id else None
        if not model_id and (match := _MODELS_URI.match(source)):
            model_id = match.group(1)
        if model_id:
            logged = self.get_logged_model(model_id)  # NotFound for an unknown logged model
            run_id = run_id or logged.source_run_id
        label = check_label(version_label) if version_label is not None else None
        files_digest, rows = self._pin_files(source)
        if label is None:
            label = self._label_for(name, files_digest, rows)
        provenance = self.facts.provenance(run_id) if (self.facts and run_id) else {}
        new = NewModelVersion(
            files_digest=files_digest,
            file_digests=tuple(r.digest for r in rows),
            version_label=label,
            provenance=provenance,
            source=source,
            run_id=run_id,
            run_link=optional_text(run_link, "run_link") or None,
            model_id=model_id or None,
            description=optional_text(description, "description"),
            user_id=optional_text(user_id, "user_id", 256) or self.actor,
            tags=_tags(tags, "model version tag"),
        )
        version = self.store.create_model_version(name, new)
        target = _version_ref(name, version.version)
        self.events.record(
            new.user_id,
            "model_version.created",
            *target,
            {
                "source": source,
                "run_id": run_id,
                "model_id": new.model_id,
                "version_label": label,
            },
        )
        if run_id:
            self.lineage.link(("run", run_id), target, "registered_as")
        if new.model_id:
            self.lineage.link(("logged_model", new.model_id), target, "registered_as")
        return version

    def version_files(self, name: str, version: int | str) -> list[ArtifactRow]:
        """The files a version loads, ordered by path: those pinned at registration, or, for a
        version registered before pinning (or from outside this workspace), its source's files
        now. NotFound when neither is known here (an ``s3://`` source, say)."""
        found = self.get_model_version(name, version)
        if found.files_digest:
            entries = self.blobs.read_manifest(found.files_digest).entries
            return [ArtifactRow(e.path, e.digest, e.size) for e in entries]
        rows = self.files_of(found.source) if self.files_of is not None else None
        if not rows:
            raise NotFound(
                f"the files of {found.name}/{found.version} ({found.source}) are not stored in "
                "this workspace"
            )
        return sorted(rows, key=lambda r: r.path)

    def download_version(self, name: str, version: int | str, dst: str | os.PathLike[str]) -> Path:
        """The version's files into ``dst``, every byte verified against its digest."""
        rows = self.version_files(name, version)
        fetch = lambda r, t: self.blobs.get_to_path(r.digest, t)  # noqa: E731
        return write_rows(rows, Path(dst), fetch, what="model file path")

    def open_version_file(
        self, name: str, version: int | str, path: str, *, verify: bool = True
    ) -> BinaryIO:
        """One file of a version, verified against its digest as it is read (unless the
        reader verifies it itself: see :meth:`BlobStore.open`)."""
        clean = safe_relpath(path, "model file path")
        for row in self.version_files(name, version):
            if row.path == clean:
                return self.blobs.open(row.digest, verify=verify)
        raise NotFound(f"model version {name}/{version} has no file {clean!r}")

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.store.get_model_version(check_model_name(name), check_version(version))

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        name, number = check_model_name(name), check_version(version)
        updated = self.store.update_model_version(
            name, number, optional_text(description, "description")
        )
        self.events.record(None, "model_version.updated", *_version_ref(name, number))
        return updated

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        """Move a version to a stage (matched case-insensitively). With
        ``archive_existing_versions`` the stage's other versions become Archived, which only
        makes sense for Staging and Production (refused otherwise, as MLflow)."""
        name, number, canonical = check_model_name(name), check_version(version), check_stage(stage)
        if archive_existing_versions and canonical not in ACTIVE_STAGES:
            raise InvalidInput(
                f"archive_existing_versions needs stage Staging or Production, not {canonical!r}"
            )
        before = self.store.get_model_version(name, number).current_stage
        moved = self.store.transition_model_version_stage(
            name, number, canonical, bool(archive_existing_versions)
        )
        self.events.record(
            None,
            "model_version.stage_changed",
            *_version_ref(name, number),
            {"from": before, "to": str(canonical), "archive_existing": archive_existing_versions},
        )
        return moved

    def delete_model_version(self, name: str, version: int | str) -> None:
        name, number = check_model_name(name), check_version(version)
        self.store.delete_model_version(name, number)
        self.events.record(None, "model_version.deleted", *_version_ref(name, number))

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        self.store.set_model_version_tag(
            check_model_name(name),
            check_version(version),
            check_key(key, "model version tag"),
            tag_value(key, value),
        )

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self.store.delete_model_version_tag(
            check_model_name(name), check_version(version), check_key(key, "model version tag")
        )

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[ModelVersion], str | None]:
        """Filter grammar: ``name``, ``source_path`` (=, !=, LIKE, ILIKE), ``run_id``,
        ``current_stage`` (=, !=, IN, NOT IN), ``version_number`` (numeric comparisons) and
        ``tags.<key>``, joined by AND. Default order: name ascending, version descending."""
        grammar = search.MODEL_VERSION_GRAMMAR
        page = self.store.search_model_versions(
            search.parse_filter(filter_string, grammar),
            search.parse_order_by(list(order_by or []), grammar),
            _page_size(max_results, MAX_MODEL_VERSIONS_PAGE),
            paging.offset_from_token(page_token),
        )
        return page.items, paging.page_token(page.next_offset)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (every stage if none are given)."""
        wanted = [check_stage(s) for s in stages] if stages else list(ModelVersionStage)
        return self.store.get_latest_versions(
            check_model_name(name), [str(s) for s in dict.fromkeys(wanted)]
        )

    # -- aliases -----------------------------------------------------------------------------
    def set_alias(
        self, name: str, alias: str, version: int | str, *, reason: str = ""
    ) -> AliasMove:
        """Point ``alias`` at ``version`` now; an alias set elsewhere moves. Recorded in the
        alias history (who, when, why, from where). An alias whose policy needs approval
        cannot be set directly: PermissionDenied, use :meth:`promote`."""
        name, alias = check_model_name(name), check_alias(alias)
        policy = self.policy_for(name, alias)
        if policy is not None and (policy.needs_approval or policy.checks):
            raise PermissionDenied(
                f"alias {alias!r} of {name!r} is governed by a promotion policy "
                f"({_policy_summary(policy)}); use 'loopline models promote' "
                "(ll.models.promote) to request the move"
            )
        return self._move(name, version, alias, reason=reason)

    def _move(
        self,
        name: str,
        version: int | str,
        alias: str,
        *,
        reason: str = "",
        expected_current: int | str | None = ANY_VERSION,
        details: Mapping[str, Any] | None = None,
    ) -> AliasMove:
        number = check_version(version)
        expected = expected_current
        if expected not in (ANY_VERSION, None):
            expected = check_version(expected)  # type: ignore[arg-type]
        move = self.store.set_alias(
            name,
            alias,
            number,
            actor=self.actor,
            reason=optional_text(reason, "reason"),
            expected=expected,
        )
        self._record_move(move, details)
        return move

    def _record_move(self, move: AliasMove, details: Mapping[str, Any] | None = None) -> None:
        assert move.version is not None
        self.events.record(
            None,
            "model_version.alias_set",
            *_version_ref(move.name, move.version),
            {
                "alias": move.alias,
                "previous_version": move.previous_version,
                "reason": move.reason,
                **(details or {}),
            },
        )

    def promote(
        self,
        name: str,
        version: int | str,
        alias: str,
        *,
        reason: str = "",
        expected_current: int | str | None = ANY_VERSION,
    ) -> AliasMove | PromotionRequest:
        """Move ``alias`` to ``version``, or, when the alias's policy needs approval, open a
        promotion request (returned, PENDING) that :meth:`approve` completes.

        The policy's checks run first: a version that fails one is refused
        (PermissionDenied naming the check and the observed value). With
        ``expected_current`` (the version the caller saw the alias on, or None for unset)
        the move is a compare-and-set: if another promotion moved the alias in between, this
        one raises Conflict and changes nothing, so the history stays linear. A request
        carries the same expectation to the moment it is approved."""
        name, alias, number = check_model_name(name), check_alias(alias), check_version(version)
        reason = optional_text(reason, "reason")
        policy = self.policy_for(name, alias)
        if policy is None:
            return self._move(name, number, alias, reason=reason, expected_current=expected_current)
        found = self.store.get_model_version(name, number)  # NotFound before any check
        checks = evaluate_checks(
            policy,
            lambda evaluation: (
                self.facts.metrics(found.run_id, name, number, evaluation) if self.facts else {}
            ),
            name,
            number,
        )
        failed = [c for c in checks if not c.passed]
        if failed:
            raise PermissionDenied(
                f"promotion of {name}/{number} to {alias!r} refused by policy: "
                + "; ".join(f"{c.check} failed ({c.detail})" for c in failed)
            )
        if not policy.needs_approval:
            return self._move(
                name,
                number,
                alias,
                reason=reason,
                expected_current=expected_current,
                details={"checks": [c.__dict__ for c in checks]},
            )
        if expected_current != ANY_VERSION:
            current = self.store.get_registered_model(name).aliases.get(alias)
            wanted = None if expected_current is None else check_version(expected_current)
            if current != wanted:
                raise Conflict(
                    f"alias {alias!r} of {name!r} points at "
                    f"{'nothing' if current is None else f'version {current}'}, not "
                    f"{'nothing' if wanted is None else f'version {wanted}'}; look again"
                )
        for pending in self.store.list_promotion_requests(
            name, version=number, state=PromotionState.PENDING
        ):
            if pending.alias == alias:
                raise Conflict(
                    f"promotion request {pending.request_id} already asks to move {alias!r} of "
                    f"{name!r} to version {number}; approve or reject it"
                )
        request = self.store.create_promotion_request(
            name,
            number,
            alias,
            requested_by=self.actor,
            reason=reason,
            required_approvals=policy.approvals,
            approver_role=policy.approver_role,
            checks=checks,
        )
        self.events.record(
            None,
            "promotion.requested",
            *_version_ref(name, number),
            {
                "request_id": request.request_id,
                "alias": alias,
                "reason": reason,
                "required_approvals": policy.approvals,
                "expected_version": request.expected_version,
            },
        )
        return request

    def approve(self, request_id: int | str, *, comment: str = "") -> PromotionRequest:
        """Approve a pending request. The approval that reaches the policy's count moves the
        alias (state APPLIED) in the same transaction. If the alias moved elsewhere since
        the request was made, the request turns STALE and this raises Conflict: approving a
        stale picture must never silently undo someone else's promotion."""
        return self._decide(request_id, approved=True, comment=comment)

    def reject(self, request_id: int | str, *, comment: str = "") -> PromotionRequest:
        """Refuse a pending request (approvers; the requester may withdraw their own)."""
        return self._decide(request_id, approved=False, comment=comment)

    def _decide(self, request_id: int | str, *, approved: bool, comment: str) -> PromotionRequest:
        number = check_request_id(request_id)
        comment = optional_text(comment, "comment")
        request = self.store.get_promotion_request(number)
        if request.state != PromotionState.PENDING:  # the store checks again, under its lock
            raise Conflict(f"promotion request {number} is {request.state}, no longer pending")
        policy = self.policy_for(request.name, request.alias)
        own = request.requested_by == self.actor
        withdrawing = own and not approved
        if own and approved and not (policy and policy.allow_self_approval):
            raise PermissionDenied(
                f"{self.actor} requested promotion {number} and cannot approve it; another "
                "approver must"
            )
        if not withdrawing and self.role_of is not None:
            have = self.role_of(request.name)
            if have is None or Role.parse(have) < Role.parse(request.approver_role):
                raise PermissionDenied(
                    f"approving promotions of {request.name!r} to {request.alias!r} needs the "
                    f"{request.approver_role} role; {self.actor} has "
                    f"{have or 'no role'}"
                )
        approvers = [d.actor for d in request.decisions if d.approved]
        approvers.append(self.actor)
        decided, move = self.store.decide_promotion(
            number,
            actor=self.actor,
            approved=approved,
            comment=comment,
            move_reason=(
                f"promotion request {number} by {request.requested_by}"
                + (f": {request.reason}" if request.reason else "")
                + f" (approved by {', '.join(approvers)})"
            ),
        )
        target = _version_ref(decided.name, decided.version)
        self.events.record(
            None,
            "promotion.approved" if approved else "promotion.rejected",
            *target,
            {
                "request_id": number,
                "alias": decided.alias,
                "comment": comment,
                "state": str(decided.state),
            },
        )
        if move is not None:
            self._record_move(move, {"request_id": number})
        if decided.state == PromotionState.STALE:
            current = self.store.get_registered_model(decided.name).aliases.get(decided.alias)
            raise Conflict(
                f"promotion request {number} is stale: alias {decided.alias!r} of "
                f"{decided.name!r} was at {_at(decided.expected_version)} when requested and "
                f"is at {_at(current)} now; request again"
            )
        return decided

    def get_promotion_request(self, request_id: int | str) -> PromotionRequest:
        return self.store.get_promotion_request(check_request_id(request_id))

    def list_promotion_requests(
        self,
        name: str | None = None,
        *,
        version: int | str | None = None,
        state: str | None = None,
    ) -> list[PromotionRequest]:
        """Requests, oldest first, optionally of one model / version / state."""
        if state is not None and state.upper() not in set(PromotionState):
            raise InvalidInput(f"state must be one of {', '.join(PromotionState)}, got {state!r}")
        return self.store.list_promotion_requests(
            check_model_name(name) if name is not None else None,
            version=check_version(version) if version is not None else None,
            state=state.upper() if state is not None else None,
        )

    # -- promotion policies --------------------------------------------------------------------
    def set_promotion_policy(
        self, name: str, policy: PromotionPolicy | Mapping[str, Any]
    ) -> PromotionPolicy:
        """Store the policy for ``policy.alias`` of ``name`` (replacing one set before; a
        policy in ``loopline.toml`` for the same alias is overridden)."""
        name = check_model_name(name)
        data = policy.to_dict() if isinstance(policy, PromotionPolicy) else dict(policy)
        data["model"] = name
        parsed = parse_policy(data)
        check_alias(parsed.alias)
        text = json.dumps(parsed.to_dict())
        self.store.set_promotion_policy(name, parsed.alias, text, self.actor)
        self.events.record(
            None, "registered_model.policy_set", "registered_model", name, parsed.to_dict()
        )
        return parsed

    def delete_promotion_policy(self, name: str, alias: str) -> None:
        name, alias = check_model_name(name), check_alias(alias)
        self.store.delete_promotion_policy(name, alias)
        self.events.record(
            None, "registered_model.policy_deleted", "registered_model", name, {"alias": alias}
        )

    def _stored_policies(self, name: str) -> list[PromotionPolicy]:
        return [
            parse_policy(json.loads(text), f"stored policy for {name}/{alias}")
            for alias, text in self.store.promotion_policies(name).items()
        ]

    def promotion_policies(self, name: str) -> list[PromotionPolicy]:
        """Every policy in force for ``name``: stored ones, then configured ones for aliases
        no stored policy covers (the exact model before ``*``)."""
        name = check_model_name(name)
        stored = self._stored_policies(name)
        aliases = dict.fromkeys([p.alias for p in stored] + [p.alias for p in self.policies])
        found = [pick_policy(stored, self.policies, name, alias) for alias in aliases]
        return [p for p in found if p is not None]

    def policy_for(self, name: str, alias: str) -> PromotionPolicy | None:
        """The policy governing ``alias`` of ``name``, if any."""
        stored = self._stored_policies(name)
        return pick_policy(stored, self.policies, name, alias)

    def rollback(self, name: str, alias: str, *, reason: str = "") -> AliasMove:
        """Move ``alias`` back to the version it pointed at before its last move. A rollback
        needs no approval (it restores a version that was approved before) but is recorded
        like every move."""
        name, alias = check_model_name(name), check_alias(alias)
        history = self.store.alias_history(name, alias)
        if not history or history[-1].version is None:
            raise InvalidInput(f"alias {alias!r} of {name!r} is not set; nothing to roll back")
        last = history[-1]
        if last.previous_version is None:
            raise InvalidInput(
                f"alias {alias!r} of {name!r} pointed at nothing before version "
                f"{last.version}; delete the alias instead"
            )
        return self._move(
            name,
            last.previous_version,
            alias,
            reason=reason or f"rollback from version {last.version}",
            expected_current=last.version,
            details={"rollback": True},
        )

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        return self.store.alias_history(
            check_model_name(name), check_alias(alias) if alias is not None else None
        )

    def delete_alias(self, name: str, alias: str, *, reason: str = "") -> None:
        name, alias = check_model_name(name), check_alias(alias)
        self.store.delete_alias(
            name, alias, actor=self.actor, reason=optional_text(reason, "reason")
        )
        self.events.record(
            None, "registered_model.alias_deleted", "registered_model", name, {"alias": alias}
        )

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.store.get_version_by_alias(check_model_name(name), check_alias(alias))

    # -- logged models -----------------------------------------------------------------------
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        model_type: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> LoggedModel:
        """A PENDING logged model; upload its files, then :meth:`finalize_logged_model`."""
        model_id = f"m-{uuid.uuid4().hex}"
        experiment_id = str(experiment_id)
        run_id = check_run_id(source_run_id) if source_run_id else None
        stamp = now_ms()
        model = LoggedModel(
            model_id=model_id,
            experiment_id=experiment_id,
            name=optional_text(name, "logged model name", 256) or generate_run_name(),
            artifact_location=f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts",
            creation_timestamp=stamp,
            last_updated_timestamp=stamp,
            status=LoggedModelStatus.PENDING,
            source_run_id=run_id,
            model_type=optional_text(model_type, "model_type", 256) or None,
            lifecycle_stage=LifecycleStage.ACTIVE,
            tags=_tags(tags, "logged model tag"),
            params={check_key(k, "param"): param_value(k, v) for k, v in (params or {}).items()},
        )
        self.store.create_logged_model(model)
        self.events.record(
            None, "logged_model.created", "logged_model", model_id, {"experiment_id": experiment_id}
        )
        if run_id:
            self.lineage.link(("run", run_id), ("logged_model", model_id), "produced")
        return self.store.get_logged_model(model_id)

    def get_logged_model(self, model_id: str) -> LoggedModel:
        return self.store.get_logged_model(check_logged_model_id(model_id))

    def finalize_logged_model(
        self, model_id: str, status: str, status_message: str | None = None
    ) -> LoggedModel:
        """Mark the upload finished: READY, or FAILED (with a message saying why)."""
        check_logged_model_id(model_id)
        if status not in (LoggedModelStatus.READY, LoggedModelStatus.FAILED):
            raise InvalidInput(f"logged model status must be READY or FAILED, got {status!r}")
        model = self.store.update_logged_model(
            model_id,
            status=status,
            status_message=optional_text(status_message, "status_message"),
        )
        self.events.record(
            None, "logged_model.finalized", "logged_model", model_id, {"status": status}
        )
        return model

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, Any]) -> None:
        self.store.set_logged_model_tags(
            check_logged_model_id(model_id), _tags(tags, "logged model tag")
        )

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.store.delete_logged_model_tag(
            check_logged_model_id(model_id), check_key(key, "logged model tag")
        )

    def log_logged_model_params(self, model_id: str, params: Mapping[str, Any]) -> None:
        clean = {check_key(k, "param"): param_value(k, v) for k, v in params.items()}
        self.store.log_logged_model_params(check_logged_model_id(model_id), clean)

    def delete_logged_model(self, model_id: str) -> None:
        """Soft delete: the model leaves searches but keeps its files (and their blobs)."""
        self.store.update_logged_model(
            check_logged_model_id(model_id), lifecycle_stage=LifecycleStage.DELETED
        )
        self.events.record(None, "logged_model.deleted", "logged_model", model_id)

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> tuple[list[LoggedModel], str | None]:
        """Filter grammar: ``name``, ``model_type`` (=, !=, LIKE, ILIKE), ``source_run_id``,
        ``status``, ``model_id`` (=, !=, IN, NOT IN), ``tags.<key>`` and ``params.<key>``,
        joined by AND. Default order: newest first."""
        if not experiment_ids:
            raise InvalidInput("experiment_ids must name at least one experiment")
        grammar = search.LOGGED_MODEL_GRAMMAR
        page = self.store.search_logged_models(
            [str(e) for e in experiment_ids],
            search.parse_filter(filter_string, grammar),
            search.parse_order_by(list(order_by or []), grammar),
            bool(include_deleted),
            _page_size(max_results, MAX_LOGGED_MODELS_PAGE),
            paging.offset_from_token(page_token),
        )
        return page.items, paging.page_token(page.next_offset)

    # -- logged-model files ------------------------------------------------------------------
    def log_model_artifact_stream(self, model_id: str, path: str, stream: BinaryIO) -> ArtifactRow:
        """Store one file of a logged model (replacing one at the same path)."""
        check_logged_model_id(model_id)
        clean = safe_relpath(path, "artifact path")
        digest = self.blobs.put_stream(stream)
        row = ArtifactRow(clean, digest, self.blobs.stat(digest).size)
        self.store.add_model_artifacts(model_id, [row])
        return row

    def list_model_artifacts(self, model_id: str, path: str | None = None) -> list[ArtifactInfo]:
        """The direct children of ``path`` (files and directories), like ``ls``."""
        prefix = safe_relpath(path, "artifact path") if path else ""
        return children_of(self.model_artifact_files(model_id, prefix or None), prefix)

    def model_artifact_files(self, model_id: str, path: str | None = None) -> list[ArtifactRow]:
        """Every file under ``path`` (all files without one), ordered by path."""
        prefix = safe_relpath(path, "artifact path") if path else ""
        return self.store.list_model_artifacts(check_logged_model_id(model_id), prefix)

    def open_model_artifact(self, model_id: str, path: str) -> BinaryIO:
        clean = safe_relpath(path, "artifact path")
        for row in self.store.list_model_artifacts(check_logged_model_id(model_id), clean):
            if row.path == clean:
                return self.blobs.open(row.digest)
        raise NotFound(f"logged model {model_id} has no artifact file {clean!r}")
