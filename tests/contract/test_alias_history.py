"""Promotion: alias moves are recorded, compare-and-set under concurrency, and rolled back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline.config import Settings
from loopline.errors import Conflict, InvalidInput
from loopline.registry.service import RegistryService
from loopline.workspace import Workspace
from tests.live_server import ThreadServer


@pytest.fixture
def workspace(store_uri: str, tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(Settings.for_home(tmp_path / "ws", store_uri=store_uri, actor="ada"))
    yield ws
    ws.close()


@pytest.fixture(params=["in-process", "server"])
def registry(request: pytest.FixtureRequest, workspace: Workspace) -> Iterator[RegistryService]:
    """The registry in this process, or the same interface through a live server."""
    workspace.registry.create_registered_model("fraud")
    for _ in range(4):
        workspace.registry.create_model_version("fraud", "s3://bucket/model")
    if request.param == "in-process":
        yield workspace.registry
        return
    with ThreadServer(workspace) as server:
        remote = Workspace(
            Settings.for_home(workspace.settings.home, tracking_uri=server.url, actor="ada")
        )
        yield remote.registry  # type: ignore[misc]
        remote.close()


def _moves(registry: RegistryService, alias: str) -> list[tuple[int | None, int | None, str]]:
    return [
        (m.previous_version, m.version, m.reason) for m in registry.alias_history("fraud", alias)
    ]


def test_every_move_is_recorded_and_rollback_goes_back_one_step(registry: RegistryService) -> None:
    registry.promote("fraud", 1, "production", reason="first release")
    registry.promote("fraud", 2, "production", reason="retrained", expected_current=1)
    registry.set_alias("fraud", "staging", 3)
    back = registry.rollback("fraud", "production", reason="v2 drifted")
    registry.delete_alias("fraud", "staging", reason="retired")
    assert back.version == 1 and registry.get_version_by_alias("fraud", "production").version == 1
    assert _moves(registry, "production") == [
        (None, 1, "first release"),
        (1, 2, "retrained"),
        (2, 1, "v2 drifted"),
    ]
    assert _moves(registry, "staging") == [(None, 3, ""), (3, None, "retired")]
    assert {m.actor for m in registry.alias_history("fraud")} == {"ada"}
    assert [m.seq for m in registry.alias_history("fraud")] == sorted(
        m.seq for m in registry.alias_history("fraud")
    )


def test_a_promotion_from_a_stale_view_is_a_conflict_and_changes_nothing(
    registry: RegistryService,
) -> None:
    registry.promote("fraud", 1, "production")
    registry.promote("fraud", 2, "production", expected_current=1)
    with pytest.raises(Conflict, match="moved since"):
        registry.promote("fraud", 3, "production", expected_current=1)
    with pytest.raises(Conflict):
        registry.promote("fraud", 3, "champion", expected_current=2)  # unset, not 2
    assert registry.get_version_by_alias("fraud", "production").version == 2
    assert _moves(registry, "production") == [(None, 1, ""), (1, 2, "")]


def test_two_concurrent_promotions_of_one_alias_exactly_one_wins(
    registry: RegistryService,
) -> None:
    registry.promote("fraud", 1, "production")
    start = threading.Barrier(2)
    outcome: dict[int, str] = {}

    def promote(version: int) -> None:
        start.wait()
        try:
            registry.promote("fraud", version, "production", expected_current=1)
            outcome[version] = "won"
        except Conflict:
            outcome[version] = "conflict"

    threads = [threading.Thread(target=promote, args=(v,)) for v in (2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcome.values()) == ["conflict", "won"]
    winner = next(v for v, result in outcome.items() if result == "won")
    assert registry.get_version_by_alias("fraud", "production").version == winner
    assert _moves(registry, "production") == [(None, 1, ""), (1, winner, "")]


def test_rollback_needs_an_earlier_version(registry: RegistryService) -> None:
    with pytest.raises(InvalidInput, match="not set"):
        registry.rollback("fraud", "production")
    registry.promote("fraud", 1, "production")
    with pytest.raises(InvalidInput, match="pointed at nothing"):
        registry.rollback("fraud", "production")
