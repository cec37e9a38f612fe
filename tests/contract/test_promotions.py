"""Promotion policies and approvals: the same suite in-process and through a live server with
auth on, on SQLite and PostgreSQL.

Users: ``ada`` (the model's admin) sets policies and requests promotions; ``bob`` and
``carol`` are editors of the model; ``dave`` is only a reader. In-process there is no
authentication, so roles come from a table handed to the service; through the server they come
from real grants.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loopline.access import AccessService, Role
from loopline.config import Settings
from loopline.errors import Conflict, InvalidInput, PermissionDenied
from loopline.events import EventLog
from loopline.registry.entities import AliasMove, PromotionRequest, PromotionState
from loopline.registry.service import RegistryService
from loopline.server import ServerOptions
from loopline.store.sql_access import SqlAccessStore
from loopline.tracking.validation import make_metric
from loopline.workspace import Workspace
from tests.live_server import ThreadServer

ROLES = {"ada": Role.ADMIN, "bob": Role.EDITOR, "carol": Role.EDITOR, "dave": Role.READER}
PASSWORD = "a-long-enough-password"
As = Callable[[str], RegistryService]


@pytest.fixture
def workspace(store_uri: str, tmp_path: Path) -> Iterator[Workspace]:
    settings = Settings.for_home(
        tmp_path / "ws",
        store_uri=store_uri,
        actor="ada",
        promotion_policies=[{"model": "*", "alias": "audited", "approvals": 1}],
    )
    ws = Workspace(settings)
    experiment = ws.tracking.create_experiment("training")
    ws.registry.create_registered_model("fraud")
    for auc in (0.91, 0.93, 0.71):  # versions 1, 2 and 3
        run = ws.tracking.create_run(experiment)
        ws.tracking.log_batch(run.info.run_id, [make_metric("auc", auc, 0)])
        ws.registry.create_model_version("fraud", "s3://bucket/model", run_id=run.info.run_id)
    yield ws
    ws.close()


@pytest.fixture(params=["in-process", "server"])
def as_user(request: pytest.FixtureRequest, workspace: Workspace) -> Iterator[As]:
    """``as_user(name)``: the registry acting as that user."""
    if request.param == "in-process":

        def local(name: str) -> RegistryService:
            return workspace.registry.acting_as(
                name,
                EventLog(workspace.store, name),
                role_of=lambda model, who=name: str(ROLES[who]),
            )

        yield local
        return
    access = AccessService(SqlAccessStore(workspace.database), workspace.events)
    for name, role in ROLES.items():
        access.create_user(name, PASSWORD)
        access.grant(name, "registered_model", "fraud", role, actor="setup")
    opened: list[Workspace] = []
    with ThreadServer(workspace, ServerOptions(auth=True)) as server:

        def remote(name: str) -> RegistryService:
            ws = Workspace(
                Settings.for_home(
                    workspace.settings.home,
                    tracking_uri=server.url,
                    tracking_username=name,
                    tracking_password=PASSWORD,
                    actor=name,
                )
            )
            opened.append(ws)
            return ws.registry

        yield remote
        for ws in opened:
            ws.close()


def _two_approvals(as_user: As, checks: list[dict[str, object]] | None = None) -> None:
    as_user("ada").set_promotion_policy(
        "fraud", {"alias": "production", "approvals": 2, "checks": checks or []}
    )


def test_a_governed_alias_moves_only_after_enough_distinct_approvals(as_user: As) -> None:
    _two_approvals(as_user, [{"metric": "auc", "min": 0.9}])
    ada, bob, carol = as_user("ada"), as_user("bob"), as_user("carol")
    request = ada.promote("fraud", 2, "production", reason="better AUC")
    assert isinstance(request, PromotionRequest)
    assert (request.state, request.required_approvals, request.expected_version) == (
        PromotionState.PENDING,
        2,
        None,
    )
    assert [(c.check, c.passed, c.observed) for c in request.checks] == [("auc >= 0.9", True, 0.93)]
    with pytest.raises(PermissionDenied, match="cannot approve"):
        ada.approve(request.request_id)
    halfway = bob.approve(request.request_id, comment="looks good")
    assert (halfway.state, halfway.approvals) == (PromotionState.PENDING, 1)
    with pytest.raises(Conflict, match="already decided"):
        bob.approve(request.request_id)
    with pytest.raises(InvalidInput):  # not set yet: rollback has nothing to go back to
        ada.rollback("fraud", "production")
    done = carol.approve(request.request_id)
    assert done.state == PromotionState.APPLIED
    assert [(d.actor, d.approved, d.comment) for d in done.decisions] == [
        ("bob", True, "looks good"),
        ("carol", True, ""),
    ]
    assert ada.get_version_by_alias("fraud", "production").version == 2
    (move,) = ada.alias_history("fraud", "production")
    assert (move.version, move.previous_version, move.actor) == (2, None, "carol")
    assert f"promotion request {request.request_id} by ada: better AUC" in move.reason
    assert "approved by bob, carol" in move.reason
    assert ada.get_promotion_request(request.request_id) == done
    assert [r.request_id for r in ada.list_promotion_requests("fraud", state="applied")] == [
        request.request_id
    ]


def test_a_version_failing_a_check_is_refused_and_nothing_is_requested(as_user: As) -> None:
    _two_approvals(as_user, [{"metric": "auc", "min": 0.9}, {"metric": "latency", "max": 5}])
    ada = as_user("ada")
    with pytest.raises(PermissionDenied) as refused:
        ada.promote("fraud", 3, "production")
    message = str(refused.value)
    assert "auc >= 0.9 failed (auc = 0.71)" in message
    assert "latency <= 5 failed (latency was not logged" in message
    assert ada.list_promotion_requests("fraud") == []
    with pytest.raises(PermissionDenied, match="latency"):
        ada.promote("fraud", 2, "production")  # auc passes, latency is missing


def test_checks_without_approvals_move_at_once(as_user: As) -> None:
    ada = as_user("ada")
    ada.set_promotion_policy(
        "fraud", {"alias": "staging", "approvals": 0, "checks": [{"metric": "auc", "min": 0.9}]}
    )
    move = ada.promote("fraud", 1, "staging")
    assert isinstance(move, AliasMove) and move.version == 1
    with pytest.raises(PermissionDenied, match="auc"):
        ada.promote("fraud", 3, "staging")
    assert ada.get_version_by_alias("fraud", "staging").version == 1


def test_a_rejected_request_is_closed_and_the_alias_stays(as_user: As) -> None:
    _two_approvals(as_user)
    ada, bob = as_user("ada"), as_user("bob")
    ada.promote("fraud", 1, "production")  # first request, for later
    request = ada.promote("fraud", 2, "production")
    with pytest.raises(Conflict, match="already asks"):
        ada.promote("fraud", 2, "production")
    rejected = bob.reject(request.request_id, comment="calibration is off")
    assert rejected.state == PromotionState.REJECTED
    assert rejected.decisions[0].comment == "calibration is off"
    with pytest.raises(Conflict, match="no longer pending"):
        as_user("carol").approve(request.request_id)
    withdrawn = ada.reject(1)  # the requester withdraws their own
    assert withdrawn.state == PromotionState.REJECTED
    assert ada.alias_history("fraud", "production") == []


def test_approvers_need_the_policy_role_and_governed_aliases_refuse_direct_moves(
    as_user: As,
) -> None:
    ada = as_user("ada")
    ada.set_promotion_policy(
        "fraud", {"alias": "production", "approvals": 1, "approver_role": "editor"}
    )
    request = ada.promote("fraud", 1, "production")
    with pytest.raises(PermissionDenied, match="editor"):
        as_user("dave").approve(request.request_id)
    with pytest.raises(PermissionDenied, match="governed by a promotion policy"):
        ada.set_alias("fraud", "production", 1)
    with pytest.raises(PermissionDenied, match="governed"):
        ada.set_alias("fraud", "audited", 1)  # the "*" policy from loopline settings
    assert {p.alias for p in ada.promotion_policies("fraud")} == {"production", "audited"}
    ada.set_alias("fraud", "champion", 1)  # ungoverned aliases move freely
    ada.delete_promotion_policy("fraud", "production")
    assert ada.promote("fraud", 2, "production").version == 2  # type: ignore[union-attr]


def test_an_approval_on_a_stale_picture_is_refused_and_marks_the_request(as_user: As) -> None:
    as_user("ada").set_promotion_policy("fraud", {"alias": "production", "approvals": 1})
    ada, bob = as_user("ada"), as_user("bob")
    first = ada.promote("fraud", 1, "production")
    second = ada.promote("fraud", 2, "production")
    assert bob.approve(first.request_id).state == PromotionState.APPLIED
    with pytest.raises(Conflict, match="stale"):
        bob.approve(second.request_id)
    assert ada.get_promotion_request(second.request_id).state == PromotionState.STALE
    assert ada.get_version_by_alias("fraud", "production").version == 1


def test_two_concurrent_final_approvals_move_the_alias_once(as_user: As) -> None:
    as_user("ada").set_promotion_policy("fraud", {"alias": "production", "approvals": 1})
    ada = as_user("ada")
    requests = [ada.promote("fraud", v, "production") for v in (1, 2)]
    approvers = [as_user("bob"), as_user("carol")]
    start = threading.Barrier(2)
    outcome: dict[int, str] = {}

    def approve(index: int) -> None:
        start.wait()
        try:
            approvers[index].approve(requests[index].request_id)
            outcome[index] = "applied"
        except Conflict:
            outcome[index] = "stale"

    threads = [threading.Thread(target=approve, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcome.values()) == ["applied", "stale"]
    winner = next(i for i, result in outcome.items() if result == "applied")
    moves = ada.alias_history("fraud", "production")
    assert [(m.previous_version, m.version) for m in moves] == [(None, winner + 1)]


def test_bad_policies_name_the_field(as_user: As) -> None:
    ada = as_user("ada")
    with pytest.raises(InvalidInput, match="approver_role"):
        ada.set_promotion_policy("fraud", {"alias": "production", "approver_role": "boss"})
    with pytest.raises(InvalidInput, match=r"checks\.0"):
        ada.set_promotion_policy("fraud", {"alias": "production", "checks": [{"metric": "auc"}]})
    with pytest.raises(InvalidInput, match="approvals"):
        ada.set_promotion_policy("fraud", {"alias": "production", "approvals": -1})
    assert {p.alias for p in ada.promotion_policies("fraud")} == {"audited"}


def test_requests_decisions_and_moves_land_in_the_event_log(
    as_user: As, workspace: Workspace
) -> None:
    as_user("ada").set_promotion_policy("fraud", {"alias": "production", "approvals": 1})
    request = as_user("ada").promote("fraud", 2, "production", reason="better")
    as_user("bob").approve(request.request_id, comment="ok")
    events = workspace.events.list(object_kind="model_version", object_id="fraud/2")
    seen = [(e.action, e.actor, e.details.get("request_id")) for e in events]
    assert seen[-3:] == [
        ("promotion.requested", "ada", request.request_id),
        ("promotion.approved", "bob", request.request_id),
        ("model_version.alias_set", "bob", request.request_id),
    ]
    policy_events = workspace.events.list(action="registered_model.policy_set")
    assert [(e.actor, e.object_id, e.details["approvals"]) for e in policy_events] == [
        ("ada", "fraud", 1)
    ]
