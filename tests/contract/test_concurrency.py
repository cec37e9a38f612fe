"""Concurrency: many processes opening and writing one workspace at the same moment all succeed
and lose nothing.

The children import everything first, announce they are ready and then spin on a "go" file, so
they hit the database within a millisecond of each other: the races are real, not interleaved by
start-up time.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text

from loopline.config import Settings
from loopline.entities import NewEvent
from loopline.store.base import MetadataStore
from loopline.store.migrate import VERSION_TABLE
from loopline.workspace import Workspace, make_store
from tests.processes import Child, Children, released_by, wait_until

PROCESSES = 8
EVENTS_PER_PROCESS = 250
WAIT = 120.0


# -- children ---------------------------------------------------------------------------------
def _preload(uri: str) -> None:
    """Import what opening a store imports, so start-up cost is paid before the release."""
    import alembic.command  # noqa: F401

    import loopline.store.sql  # noqa: F401

    if uri.startswith("postgresql"):
        import psycopg  # noqa: F401


def open_workspace_and_record(home: str, uri: str, index: int, ready: str, go: str) -> None:
    """Open the (possibly unmigrated) workspace, append one event, report what it saw."""
    _preload(uri)
    released_by(ready, go)
    with Workspace(Settings.for_home(home, store_uri=uri)) as ws:
        ws.events.record(f"opener-{index}", "test.opened", "process", str(index))
        seen = {"workspace_id": ws.id, "revision": ws.store.schema_revision()}
    Path(home, f"seen-{index}.json").write_text(json.dumps(seen))


def _events(index: int, numbers: range) -> list[NewEvent]:
    return [NewEvent(f"writer-{index}", "test.wrote", "probe", f"{index}-{k}") for k in numbers]


def write_events(uri: str, index: int, ready: str, go: str) -> None:
    """Append EVENTS_PER_PROCESS events in rounds: a lazy generator, a list, single appends."""
    store = make_store(uri)
    released_by(ready, go)
    written = 0
    for _ in range(5):
        lazy = (e for e in _events(index, range(written, written + 25)))
        assert store.append_events(lazy) == 25
        assert store.append_events(_events(index, range(written + 25, written + 40))) == 15
        for k in range(written + 40, written + 50):
            assert store.append_events(_events(index, range(k, k + 1))) == 1
        written += 50
    assert written == EVENTS_PER_PROCESS
    store.close()


def _run_released_together(children: Children, tmp_path: Path, target: str, *args: object) -> None:
    """Start PROCESSES children of ``target``, release them at once, require a clean exit."""
    go = tmp_path / "go"
    started: list[tuple[Child, Path]] = []
    for index in range(PROCESSES):
        ready = tmp_path / f"ready-{index}"
        child = children.start(target, *args, index, str(ready), str(go))
        started.append((child, ready))
    watch = [child for child, _ in started]
    wait_until(
        lambda: all(ready.exists() for _, ready in started),
        what="every child to be ready",
        timeout=WAIT,
        watch=watch,
    )
    go.touch()
    for child in watch:
        child.finish(timeout=WAIT)


# -- tests ------------------------------------------------------------------------------------
class TestConcurrentOpen:
    def test_processes_opening_a_fresh_workspace_at_once_all_succeed_and_agree(
        self, store_uri: str, tmp_path: Path
    ):
        """Eight processes opening one unmigrated workspace together all succeed: the schema is
        migrated exactly once to head and all of them see the same workspace id."""
        home = tmp_path / "home"
        home.mkdir()
        with Children(tmp_path / "logs") as children:
            _run_released_together(
                children,
                tmp_path,
                "tests.contract.test_concurrency:open_workspace_and_record",
                str(home),
                store_uri,
            )

        seen = [json.loads((home / f"seen-{i}.json").read_text()) for i in range(PROCESSES)]
        store = make_store(store_uri)
        try:
            head = store.latest_revision()
            assert {s["revision"] for s in seen} == {head}
            assert store.schema_revision() == head
            assert {s["workspace_id"] for s in seen} == {store.get_meta("workspace_id")}
            openers = {e.actor for e in store.list_events(action="test.opened")}
            assert openers == {f"opener-{i}" for i in range(PROCESSES)}
        finally:
            store.close()
        engine = create_engine(store_uri)
        try:
            with engine.connect() as conn:
                versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
        finally:
            engine.dispose()
        assert [v for (v,) in versions] == [head]


class TestConcurrentWriters:
    def test_processes_appending_events_at_once_lose_none(
        self, store: MetadataStore, store_uri: str, tmp_path: Path
    ):
        """Eight processes each appending 250 events in batches and singly, all at the same
        time, leave exactly those 2,000 events, each once, in each writer's own order."""
        with Children(tmp_path / "logs") as children:
            _run_released_together(
                children, tmp_path, "tests.contract.test_concurrency:write_events", store_uri
            )

        assert store.count_events(action="test.wrote") == PROCESSES * EVENTS_PER_PROCESS
        stored = []
        while page := store.list_events(
            action="test.wrote", after_id=stored[-1].id if stored else 0, limit=700
        ):
            stored.extend(page)
        pairs = [(e.actor, e.object_id) for e in stored]
        expected = {
            (f"writer-{i}", f"{i}-{k}") for i in range(PROCESSES) for k in range(EVENTS_PER_PROCESS)
        }
        assert len(pairs) == len(expected)
        assert set(pairs) == expected
        assert len({e.id for e in stored}) == len(stored)
        for i in range(PROCESSES):
            in_id_order = [e.object_id for e in stored if e.actor == f"writer-{i}"]
            assert in_id_order == [f"{i}-{k}" for k in range(EVENTS_PER_PROCESS)]
