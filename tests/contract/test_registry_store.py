"""The model registry contract (registered models, versions, aliases, stages, logged models and
their files), run through the RegistryService against SQLite and PostgreSQL, in process and
through a live ``loopline server`` (logged models and their files: in process only, as the
native API does not serve them yet).

Each PostgreSQL test pays for a fresh database, so one test covers one behaviour with all of its
cases, usually as a table compared in a single assertion whose diff names every case that broke.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from loopline.config import Settings
from loopline.entities import Ref
from loopline.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopline.registry.entities import ModelVersion, RegisteredModel
from loopline.registry.service import RegistryService
from loopline.store import tables as t
from loopline.workspace import Workspace
from tests.live_server import ThreadServer

RUN_A = "a" * 32
RUN_B = "b" * 32


@pytest.fixture
def workspace(store_uri: str, tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(Settings.for_home(tmp_path / "ws", store_uri=store_uri, actor="tester"))
    yield ws
    ws.close()


@pytest.fixture(params=["in-process", "server"])
def registry(request: pytest.FixtureRequest, workspace: Workspace) -> Iterator[RegistryService]:
    """The service in this process, or the same interface through a live ``loopline server``
    (on the same stores, so tests can still look at rows, events and lineage directly)."""
    if request.param == "in-process":
        yield workspace.registry
        return
    with ThreadServer(workspace) as server:
        remote = Workspace(
            Settings.for_home(workspace.settings.home, tracking_uri=server.url, actor="tester")
        )
        yield remote.registry
        remote.close()


@pytest.fixture
def local_registry(workspace: Workspace) -> RegistryService:
    """The in-process service, for what the server does not serve yet (logged models)."""
    return workspace.registry


def _raised(call: Callable[..., object], *args: object, **kwargs: object) -> str:
    """The name of the exception ``call`` raises, or ``"nothing"``."""
    try:
        call(*args, **kwargs)
    except Exception as exc:
        return type(exc).__name__
    return "nothing"


def _rows(workspace: Workspace, table: t.Table) -> int:
    with workspace.database.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _names(models: list[RegisteredModel]) -> list[str]:
    return [m.name for m in models]


def _versions(versions: list[ModelVersion]) -> list[tuple[str, int]]:
    return [(v.name, v.version) for v in versions]


def _actions(workspace: Workspace) -> list[str]:
    """The registry's own events, without the server's per-request ``audit`` records."""
    return [e.action for e in workspace.events.list(limit=1000) if e.action != "audit"]


# -- registered models -------------------------------------------------------------------------

MODEL_CALLS: dict[str, Callable[[RegistryService, str], object]] = {
    "get": lambda r, n: r.get_registered_model(n),
    "rename": lambda r, n: r.rename_registered_model(n, "elsewhere"),
    "update": lambda r, n: r.update_registered_model(n, "d"),
    "delete": lambda r, n: r.delete_registered_model(n),
    "set_tag": lambda r, n: r.set_registered_model_tag(n, "k", "v"),
    "delete_tag": lambda r, n: r.delete_registered_model_tag(n, "k"),
    "create_version": lambda r, n: r.create_model_version(n, "runs:/x/model"),
    "get_version": lambda r, n: r.get_model_version(n, 1),
    "latest": lambda r, n: r.get_latest_versions(n),
    "set_alias": lambda r, n: r.set_alias(n, "champ", 1),
    "delete_alias": lambda r, n: r.delete_alias(n, "champ"),
    "by_alias": lambda r, n: r.get_version_by_alias(n, "champ"),
}


class TestRegisteredModels:
    def test_a_created_model_is_returned_whole_and_its_creation_is_an_event(
        self, workspace: Workspace, registry: RegistryService
    ):
        made = registry.create_registered_model("fraud", "catches fraud", {"team": "risk"})
        got = registry.get_registered_model("fraud")
        assert got == made
        assert (got.name, got.description, got.tags, got.aliases, got.latest_versions) == (
            "fraud",
            "catches fraud",
            {"team": "risk"},
            {},
            [],
        )
        assert got.creation_timestamp == got.last_updated_timestamp > 0
        assert _actions(workspace) == ["registered_model.created"]
        assert registry.create_registered_model("bare").description == ""

    def test_a_taken_name_raises_already_exists(self, registry: RegistryService):
        registry.create_registered_model("dup")
        with pytest.raises(AlreadyExists, match="'dup'"):
            registry.create_registered_model("dup")

    def test_every_call_on_an_unknown_model_raises_not_found(self, registry: RegistryService):
        outcomes = {name: _raised(call, registry, "ghost") for name, call in MODEL_CALLS.items()}
        assert outcomes == dict.fromkeys(MODEL_CALLS, "NotFound")

    def test_malformed_names_are_refused_naming_the_field(self, registry: RegistryService):
        bad: list[object] = ["", "   ", "a/b", "/", "x" * 246, "tab\there", "nul\x00", 5, None]
        outcomes = {repr(n): _raised(registry.create_registered_model, n) for n in bad}
        assert outcomes == dict.fromkeys(outcomes, "InvalidInput")
        with pytest.raises(InvalidInput, match=r"registered model name .* must not contain '/'"):
            registry.create_registered_model("team/model")
        longest = registry.create_registered_model("x" * 245)
        assert len(longest.name) == 245
        spaced = registry.create_registered_model("My Model: v2 (prod) ü")
        assert registry.get_registered_model(spaced.name) == spaced

    def test_rename_moves_versions_tags_and_aliases_unless_the_name_is_taken(
        self, registry: RegistryService
    ):
        registry.create_registered_model("old", tags={"k": "v"})
        registry.create_model_version("old", "runs:/x/model")
        registry.set_alias("old", "champ", 1)
        registry.create_registered_model("theirs")
        renamed = registry.rename_registered_model("old", "new")
        assert (renamed.name, renamed.tags, renamed.aliases) == ("new", {"k": "v"}, {"champ": 1})
        assert registry.get_version_by_alias("new", "champ").name == "new"
        assert _versions(registry.search_model_versions("name = 'new'")[0]) == [("new", 1)]
        assert _raised(registry.get_registered_model, "old") == "NotFound"
        with pytest.raises(AlreadyExists, match="theirs"):
            registry.rename_registered_model("new", "theirs")
        assert registry.get_registered_model("new").tags == {"k": "v"}

    def test_description_and_tags_update_and_bump_last_updated(self, registry: RegistryService):
        made = registry.create_registered_model("m", tags={"keep": "1", "drop": "2"})
        registry.update_registered_model("m", "new text")
        registry.set_registered_model_tag("m", "stage", "dev")
        registry.set_registered_model_tag("m", "stage", "prod")
        registry.delete_registered_model_tag("m", "drop")
        registry.delete_registered_model_tag("m", "never-set")  # a no-op, as in MLflow
        got = registry.get_registered_model("m")
        assert (got.description, got.tags) == ("new text", {"keep": "1", "stage": "prod"})
        assert got.last_updated_timestamp >= made.last_updated_timestamp
        assert got.creation_timestamp == made.creation_timestamp

    def test_delete_removes_versions_tags_and_aliases_and_frees_the_name(
        self, workspace: Workspace, registry: RegistryService
    ):
        registry.create_registered_model("gone", tags={"k": "v"})
        for _ in range(3):
            registry.create_model_version("gone", "runs:/x/model", tags={"t": "1"})
        registry.set_alias("gone", "champ", 2)
        registry.create_registered_model("kept")
        registry.create_model_version("kept", "runs:/y/model")
        registry.delete_registered_model("gone")
        tables = [
            t.registered_models,
            t.registered_model_tags,
            t.model_versions,
            t.model_version_tags,
            t.registered_model_aliases,
        ]
        assert {tb.name: _rows(workspace, tb) for tb in tables} == {
            "registered_models": 1,
            "registered_model_tags": 0,
            "model_versions": 1,
            "model_version_tags": 0,
            "registered_model_aliases": 0,
        }
        assert _raised(registry.get_model_version, "gone", 1) == "NotFound"
        registry.create_registered_model("gone")
        assert registry.create_model_version("gone", "runs:/x/model").version == 1
        assert "registered_model.deleted" in _actions(workspace)


# -- registered-model search -------------------------------------------------------------------


@pytest.fixture
def catalog(registry: RegistryService) -> RegistryService:
    for name, team in [
        ("fraud-a", "risk"),
        ("fraud-B", "risk"),
        ("churn", "growth"),
        ("Fraud_c", ""),
    ]:
        registry.create_registered_model(name, tags={"team": team} if team else None)
    return registry


class TestSearchRegisteredModels:
    def test_filters_select_by_name_pattern_and_tag(self, catalog: RegistryService):
        cases = {
            "": ["Fraud_c", "churn", "fraud-B", "fraud-a"],
            "name = 'churn'": ["churn"],
            "name != 'churn'": ["Fraud_c", "fraud-B", "fraud-a"],
            "name LIKE 'fraud%'": ["fraud-B", "fraud-a"],
            "name ILIKE 'fraud%'": ["Fraud_c", "fraud-B", "fraud-a"],
            "name ILIKE '%\\_c'": ["Fraud_c"],
            "tags.team = 'risk'": ["fraud-B", "fraud-a"],
            "tags.team = 'risk' AND name LIKE '%a'": ["fraud-a"],
            "tags.`team` != 'risk'": ["churn"],
            "attributes.name = 'churn'": ["churn"],
        }
        found = {f: _names(catalog.search_registered_models(f)[0]) for f in cases}
        assert found == cases

    def test_order_by_name_or_timestamp_in_either_direction(self, catalog: RegistryService):
        catalog.update_registered_model("fraud-a", "touched last")
        cases = {
            "name ASC": ["Fraud_c", "churn", "fraud-B", "fraud-a"],
            "name DESC": ["fraud-a", "fraud-B", "churn", "Fraud_c"],
        }
        found = {o: _names(catalog.search_registered_models(order_by=[o])[0]) for o in cases}
        assert found == cases
        newest = catalog.search_registered_models(order_by=["last_updated_timestamp DESC"])[0]
        assert newest[0].name == "fraud-a"
        oldest = catalog.search_registered_models(order_by=["timestamp ASC"])[0]
        assert oldest[-1].name == "fraud-a"

    def test_page_tokens_cover_every_model_exactly_once(self, catalog: RegistryService):
        seen: list[str] = []
        token: str | None = None
        pages = 0
        while pages == 0 or token is not None:
            models, token = catalog.search_registered_models(max_results=3, page_token=token)
            seen += _names(models)
            pages += 1
        assert (seen, pages) == (["Fraud_c", "churn", "fraud-B", "fraud-a"], 2)
        bad = {
            "token": _raised(catalog.search_registered_models, page_token="%%%"),
            "zero": _raised(catalog.search_registered_models, max_results=0),
            "too many": _raised(catalog.search_registered_models, max_results=1001),
        }
        assert bad == dict.fromkeys(bad, "InvalidInput")

    def test_injection_attempts_are_only_data(self, workspace: Workspace, catalog: RegistryService):
        hostile = [
            "name = 'x'' OR ''1''=''1'",
            "name = 'churn''; DROP TABLE registered_models; --'",
            "name LIKE '%'' OR name LIKE ''%'",
            "tags.`team'; DELETE FROM registered_models; --` = 'risk'",
            'name = "churn"" OR 1=1 --"',
        ]
        found = {f: _names(catalog.search_registered_models(f)[0]) for f in hostile}
        assert found == {f: [] for f in hostile}
        weird = "o'brien; DROP TABLE x --"
        catalog.create_registered_model(weird)
        assert _names(
            catalog.search_registered_models("name = 'o''brien; DROP TABLE x --'")[0]
        ) == [weird]
        assert _rows(workspace, t.registered_models) == 5

    def test_malformed_filters_and_orders_name_the_problem(self, catalog: RegistryService):
        cases = {
            "name = 'a' OR name = 'b'": "OR is not supported",
            "run_id = 'x'": "'run_id' at offset 0 is not searchable for registered models",
            "name > 'a'": "operator > at offset 5 cannot be used with name",
            "name = 3": "expected a quoted string",
            "metrics.acc > 1": "'metrics' at offset 0 is not searchable",
            "name LIKE 'a\\'": "unfinished escape",
            "name = 'a' name = 'b'": "expected AND at offset 11",
            "tags = 'x'": "expected '.<key>'",
        }
        messages = {}
        for text in cases:
            with pytest.raises(InvalidInput) as info:
                catalog.search_registered_models(text)
            messages[text] = info.value.message
        assert {k: cases[k] in v for k, v in messages.items()} == dict.fromkeys(cases, True)
        orders = {
            o: _raised(catalog.search_registered_models, order_by=[o])
            for o in ["tags.team", "version_number", "name UP", "name ASC extra", ""]
        }
        assert orders == dict.fromkeys(orders, "InvalidInput")


# -- model versions ----------------------------------------------------------------------------


class TestModelVersions:
    def test_versions_are_numbered_from_one_and_numbers_are_never_reused(
        self, registry: RegistryService
    ):
        registry.create_registered_model("m")
        registry.create_registered_model("other")
        made = [registry.create_model_version("m", f"runs:/{i}/model").version for i in range(3)]
        assert made == [1, 2, 3]
        assert registry.create_model_version("other", "runs:/o/model").version == 1
        registry.delete_model_version("m", 3)
        assert registry.create_model_version("m", "runs:/x/model").version == 4

    def test_eight_concurrent_creators_get_versions_one_to_eight(
        self, workspace: Workspace, registry: RegistryService
    ):
        registry.create_registered_model("busy")
        barrier = threading.Barrier(8)
        results: list[int] = []
        errors: list[BaseException] = []

        def create(i: int) -> None:
            try:
                barrier.wait(timeout=30)
                results.append(registry.create_model_version("busy", f"runs:/{i}/model").version)
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert sorted(results) == list(range(1, 9))
        stored, _ = registry.search_model_versions("name = 'busy'")
        assert [v.version for v in stored] == list(range(8, 0, -1))
        assert _rows(workspace, t.model_versions) == 8

    def test_a_created_version_carries_its_fields_lineage_and_event(
        self, workspace: Workspace, registry: RegistryService
    ):
        registry.create_registered_model("m")
        v = registry.create_model_version(
            "m",
            "mlflow-artifacts:/1/abc/artifacts/model",
            run_id=RUN_A,
            tags={"k": "v"},
            run_link="http://x/run",
            description="first",
        )
        assert v == registry.get_model_version("m", 1) == registry.get_model_version("m", "1")
        assert (v.version, v.source, v.run_id, v.run_link, v.description, v.tags) == (
            1,
            "mlflow-artifacts:/1/abc/artifacts/model",
            RUN_A,
            "http://x/run",
            "first",
            {"k": "v"},
        )
        assert (v.status, v.current_stage, v.user_id, v.aliases, v.model_id) == (
            "READY",
            "None",
            "tester",
            [],
            None,
        )
        edges = workspace.lineage.downstream(("run", RUN_A))
        assert [(e.target, e.relation) for e in edges] == [
            (Ref("model_version", "m/1"), "registered_as")
        ]
        created = workspace.events.list(action="model_version.created")
        assert [(e.object_kind, e.object_id, e.details["run_id"]) for e in created] == [
            ("model_version", "m/1", RUN_A)
        ]
        assert registry.get_registered_model("m").latest_versions == [v]

    def test_bad_versions_sources_and_run_ids_are_refused(self, registry: RegistryService):
        registry.create_registered_model("m")
        registry.create_model_version("m", "runs:/x/model")
        outcomes = {
            "version 0": _raised(registry.get_model_version, "m", 0),
            "version -1": _raised(registry.get_model_version, "m", "-1"),
            "version x": _raised(registry.get_model_version, "m", "x"),
            "version 1.5": _raised(registry.get_model_version, "m", 1.5),
            "version True": _raised(registry.get_model_version, "m", True),
            "empty source": _raised(registry.create_model_version, "m", ""),
            "run id": _raised(registry.create_model_version, "m", "s", run_id="nope"),
            "model id": _raised(registry.create_model_version, "m", "s", model_id="x"),
        }
        assert outcomes == dict.fromkeys(outcomes, "InvalidInput")
        assert _raised(registry.get_model_version, "m", 2) == "NotFound"
        assert _raised(registry.delete_model_version, "m", 2) == "NotFound"

    def test_description_and_tags_of_a_version_update(self, registry: RegistryService):
        registry.create_registered_model("m")
        registry.create_model_version("m", "s", tags={"drop": "1"})
        registry.update_model_version("m", 1, "better")
        registry.set_model_version_tag("m", "1", "k", "a")
        registry.set_model_version_tag("m", 1, "k", "b")
        registry.delete_model_version_tag("m", 1, "drop")
        registry.delete_model_version_tag("m", 1, "never-set")
        v = registry.get_model_version("m", 1)
        assert (v.description, v.tags) == ("better", {"k": "b"})
        assert _raised(registry.set_model_version_tag, "m", 9, "k", "v") == "NotFound"

    def test_stage_transitions_archive_others_only_when_asked(
        self, workspace: Workspace, registry: RegistryService
    ):
        registry.create_registered_model("m")
        for _ in range(4):
            registry.create_model_version("m", "s")
        registry.transition_model_version_stage("m", 1, "production")
        registry.transition_model_version_stage("m", 2, "Production")
        registry.transition_model_version_stage("m", 3, "STAGING")
        registry.transition_model_version_stage(
            "m", 4, "Production", archive_existing_versions=True
        )
        stages = {v.version: v.current_stage for v in registry.search_model_versions()[0]}
        assert stages == {1: "Archived", 2: "Archived", 3: "Staging", 4: "Production"}
        latest = registry.get_latest_versions("m", ["Production", "staging", "None"])
        assert [(v.version, v.current_stage) for v in latest] == [(4, "Production"), (3, "Staging")]
        every = registry.get_latest_versions("m")
        assert [(v.version, v.current_stage) for v in every] == [
            (3, "Staging"),
            (4, "Production"),
            (2, "Archived"),
        ]
        assert [v.version for v in registry.get_registered_model("m").latest_versions] == [2, 3, 4]
        refused = {
            "unknown stage": _raised(registry.transition_model_version_stage, "m", 1, "Live"),
            "archive into None": _raised(
                registry.transition_model_version_stage, "m", 1, "None", True
            ),
            "unknown latest stage": _raised(registry.get_latest_versions, "m", ["Live"]),
        }
        assert refused == dict.fromkeys(refused, "InvalidInput")
        changes = workspace.events.list(action="model_version.stage_changed")
        assert [(e.object_id, e.details["from"], e.details["to"]) for e in changes][-1] == (
            "m/4",
            "None",
            "Production",
        )

    def test_a_models_uri_source_links_the_logged_model_and_its_run(
        self, workspace: Workspace, registry: RegistryService, local_registry: RegistryService
    ):
        logged = local_registry.create_logged_model("0", name="clf", source_run_id=RUN_B)
        registry.create_registered_model("m")
        v = registry.create_model_version("m", f"models:/{logged.model_id}")
        assert (v.model_id, v.run_id) == (logged.model_id, RUN_B)
        upstream = {
            (e.source, e.relation) for e in workspace.lineage.upstream(("model_version", "m/1"))
        }
        assert upstream == {
            (Ref("logged_model", logged.model_id), "registered_as"),
            (Ref("run", RUN_B), "registered_as"),
            (Ref("run", RUN_B), "produced"),
        }
        with pytest.raises(NotFound, match="logged model"):
            registry.create_model_version("m", "s", model_id="m-" + "0" * 32)


# -- aliases -----------------------------------------------------------------------------------


class TestAliases:
    def test_an_alias_is_set_moved_resolved_and_deleted(
        self, workspace: Workspace, registry: RegistryService
    ):
        registry.create_registered_model("m")
        registry.create_model_version("m", "s1")
        registry.create_model_version("m", "s2")
        registry.set_alias("m", "champion", 1)
        registry.set_alias("m", "challenger", "2")
        assert registry.get_version_by_alias("m", "champion").source == "s1"
        registry.set_alias("m", "champion", 2)  # moving is allowed
        assert registry.get_version_by_alias("m", "champion").version == 2
        assert registry.get_registered_model("m").aliases == {"challenger": 2, "champion": 2}
        assert registry.get_model_version("m", 2).aliases == ["challenger", "champion"]
        assert registry.get_model_version("m", 1).aliases == []
        registry.delete_alias("m", "challenger")
        registry.delete_alias("m", "never-set")  # a no-op, as in MLflow
        assert registry.get_registered_model("m").aliases == {"champion": 2}
        with pytest.raises(NotFound, match="no alias 'challenger'"):
            registry.get_version_by_alias("m", "challenger")
        assert "model_version.alias_set" in _actions(workspace)

    def test_reserved_and_malformed_aliases_are_refused(self, registry: RegistryService):
        registry.create_registered_model("m")
        registry.create_model_version("m", "s")
        bad = ["latest", "LATEST", "v1", "V12", "", "a b", "a/b", "x" * 256, "dots.not.ok"]
        outcomes = {a: _raised(registry.set_alias, "m", a, 1) for a in bad}
        assert outcomes == dict.fromkeys(bad, "InvalidInput")
        assert _raised(registry.set_alias, "m", "v1x", 1) == "nothing"
        assert _raised(registry.set_alias, "m", "champ", 7) == "NotFound"

    def test_deleting_a_version_drops_the_aliases_pointing_at_it(
        self, workspace: Workspace, registry: RegistryService
    ):
        registry.create_registered_model("m")
        registry.create_model_version("m", "s1")
        registry.create_model_version("m", "s2")
        registry.set_alias("m", "old", 1)
        registry.set_alias("m", "new", 2)
        registry.delete_model_version("m", 1)
        assert registry.get_registered_model("m").aliases == {"new": 2}
        assert _raised(registry.get_version_by_alias, "m", "old") == "NotFound"
        assert _rows(workspace, t.registered_model_aliases) == 1


# -- model-version search ----------------------------------------------------------------------


@pytest.fixture
def versions(registry: RegistryService) -> RegistryService:
    registry.create_registered_model("alpha")
    registry.create_registered_model("beta")
    registry.create_model_version("alpha", "runs:/a/model", run_id=RUN_A, tags={"k": "1"})
    registry.create_model_version("alpha", "runs:/b/model", run_id=RUN_B)
    registry.create_model_version("alpha", "s3://bucket/model")
    registry.create_model_version("beta", "runs:/a/other", run_id=RUN_A, tags={"k": "2"})
    return registry


class TestSearchModelVersions:
    def test_filters_select_by_name_run_source_version_and_tag(self, versions: RegistryService):
        cases = {
            "": [("alpha", 3), ("alpha", 2), ("alpha", 1), ("beta", 1)],
            "name = 'beta'": [("beta", 1)],
            "name LIKE 'al%'": [("alpha", 3), ("alpha", 2), ("alpha", 1)],
            f"run_id = '{RUN_A}'": [("alpha", 1), ("beta", 1)],
            f"run_id IN ('{RUN_A}', '{RUN_B}') AND name = 'alpha'": [("alpha", 2), ("alpha", 1)],
            "source_path = 's3://bucket/model'": [("alpha", 3)],
            "source_path LIKE 'runs:/a/%'": [("alpha", 1), ("beta", 1)],
            "version_number = 2": [("alpha", 2)],
            "version_number >= 2": [("alpha", 3), ("alpha", 2)],
            "name = 'alpha' AND version_number < 3": [("alpha", 2), ("alpha", 1)],
            "tags.k = '2'": [("beta", 1)],
            "tags.k LIKE '%'": [("alpha", 1), ("beta", 1)],
            "current_stage = 'None'": [("alpha", 3), ("alpha", 2), ("alpha", 1), ("beta", 1)],
        }
        found = {f: _versions(versions.search_model_versions(f)[0]) for f in cases}
        assert found == cases

    def test_order_by_version_and_timestamps(self, versions: RegistryService):
        by_number = versions.search_model_versions("name = 'alpha'", order_by=["version_number"])
        assert [v.version for v in by_number[0]] == [1, 2, 3]
        by_created = versions.search_model_versions(order_by=["creation_timestamp DESC"])[0]
        assert _versions(by_created)[0] == ("beta", 1)
        by_name = versions.search_model_versions(order_by=["name DESC"])[0]
        assert _versions(by_name) == [("beta", 1), ("alpha", 3), ("alpha", 2), ("alpha", 1)]

    def test_page_tokens_cover_every_version_exactly_once(self, versions: RegistryService):
        seen: list[tuple[str, int]] = []
        token: str | None = None
        while True:
            page, token = versions.search_model_versions(max_results=3, page_token=token)
            seen += _versions(page)
            if token is None:
                break
        assert seen == [("alpha", 3), ("alpha", 2), ("alpha", 1), ("beta", 1)]

    def test_injection_attempts_and_bad_filters(self, versions: RegistryService):
        hostile = {
            "run_id = 'x'' OR ''1''=''1'": [],
            "run_id IN ('x'') OR (''1''=''1')": [],
            "source_path = 's3://bucket/model'' --'": [],
        }
        found = {f: _versions(versions.search_model_versions(f)[0]) for f in hostile}
        assert found == hostile
        bad = [
            "version_number = '2'",
            "version_number = 1.5",
            "version_number LIKE '1%'",
            "run_id LIKE 'a%'",
            "status = 'READY'",
            "name = 'alpha' OR name = 'beta'",
            "version_number = 1; DROP TABLE model_versions",
        ]
        outcomes = {f: _raised(versions.search_model_versions, f) for f in bad}
        assert outcomes == dict.fromkeys(bad, "InvalidInput")


# -- logged models -----------------------------------------------------------------------------


class TestLoggedModels:
    @pytest.fixture
    def registry(self, local_registry: RegistryService) -> RegistryService:
        """In process only: the native API does not serve logged models yet."""
        return local_registry

    def test_a_logged_model_starts_pending_and_is_finalized(
        self, workspace: Workspace, registry: RegistryService
    ):
        made = registry.create_logged_model(
            "0",
            name="clf",
            source_run_id=RUN_A,
            model_type="sklearn",
            tags={"t": "1"},
            params={"alpha": 0.5},
        )
        assert made.model_id.startswith("m-") and len(made.model_id) == 34
        assert made.artifact_location == f"mlflow-artifacts:/0/models/{made.model_id}/artifacts"
        assert (made.name, made.status, made.source_run_id, made.model_type) == (
            "clf",
            "PENDING",
            RUN_A,
            "sklearn",
        )
        assert (made.tags, made.params, made.lifecycle_stage) == (
            {"t": "1"},
            {"alpha": "0.5"},
            "active",
        )
        ready = registry.finalize_logged_model(made.model_id, "READY")
        assert ready.status == registry.get_logged_model(made.model_id).status == "READY"
        failed = registry.create_logged_model("0")
        assert failed.name  # a generated name, as MLflow does
        assert (
            registry.finalize_logged_model(failed.model_id, "FAILED", "disk full").status_message
            == "disk full"
        )
        assert _raised(registry.finalize_logged_model, made.model_id, "PENDING") == "InvalidInput"
        assert "logged_model.finalized" in _actions(workspace)

    def test_unknown_experiments_and_ids_fail_clearly(
        self, workspace: Workspace, registry: RegistryService
    ):
        eid = workspace.tracking.create_experiment("gone")
        workspace.tracking.delete_experiment(eid)
        outcomes = {
            "no experiment": _raised(registry.create_logged_model, "999"),
            "non-numeric experiment": _raised(registry.create_logged_model, "abc"),
            "deleted experiment": _raised(registry.create_logged_model, eid),
            "unknown id": _raised(registry.get_logged_model, "m-" + "0" * 32),
            "malformed id": _raised(registry.get_logged_model, "m-xyz"),
            "bad run id": _raised(registry.create_logged_model, "0", source_run_id="r1"),
        }
        assert outcomes == {
            "no experiment": "NotFound",
            "non-numeric experiment": "NotFound",
            "deleted experiment": "InvalidInput",
            "unknown id": "NotFound",
            "malformed id": "InvalidInput",
            "bad run id": "InvalidInput",
        }

    def test_tags_and_params_follow_run_rules(self, registry: RegistryService):
        model_id = registry.create_logged_model("0", params={"lr": "0.1"}).model_id
        registry.set_logged_model_tags(model_id, {"a": "1", "b": "2"})
        registry.set_logged_model_tags(model_id, {"a": "3"})
        registry.delete_logged_model_tag(model_id, "b")
        registry.log_logged_model_params(model_id, {"lr": "0.1", "depth": 3})
        with pytest.raises(Conflict, match="'lr'"):
            registry.log_logged_model_params(model_id, {"lr": "0.2", "extra": "x"})
        got = registry.get_logged_model(model_id)
        assert (got.tags, got.params) == ({"a": "3"}, {"depth": "3", "lr": "0.1"})
        assert _raised(registry.delete_logged_model_tag, model_id, "b") == "NotFound"

    def test_delete_is_soft_hides_from_search_and_freezes_the_model(
        self, registry: RegistryService
    ):
        kept = registry.create_logged_model("0", name="kept").model_id
        gone = registry.create_logged_model("0", name="gone").model_id
        registry.delete_logged_model(gone)
        assert registry.get_logged_model(gone).lifecycle_stage == "deleted"
        assert [m.model_id for m in registry.search_logged_models(["0"])[0]] == [kept]
        everything = registry.search_logged_models(["0"], include_deleted=True)[0]
        assert {m.model_id for m in everything} == {kept, gone}
        frozen = {
            "tags": _raised(registry.set_logged_model_tags, gone, {"a": "1"}),
            "params": _raised(registry.log_logged_model_params, gone, {"a": "1"}),
            "files": _raised(registry.log_model_artifact_stream, gone, "f", io.BytesIO(b"x")),
        }
        assert frozen == dict.fromkeys(frozen, "InvalidInput")

    def test_search_filters_orders_and_pages_within_the_experiments(
        self, workspace: Workspace, registry: RegistryService
    ):
        other = workspace.tracking.create_experiment("other")
        a = registry.create_logged_model("0", name="a", source_run_id=RUN_A).model_id
        b = registry.create_logged_model("0", name="b", model_type="torch").model_id
        c = registry.create_logged_model(other, name="c", source_run_id=RUN_A).model_id
        registry.finalize_logged_model(b, "READY")
        registry.log_logged_model_params(a, {"lr": "0.1"})

        def ids(experiments: list[str], text: str = "", **kw: object) -> list[str]:
            return [m.model_id for m in registry.search_logged_models(experiments, text, **kw)[0]]

        found = {
            "name": ids(["0"], "name = 'a'"),
            "run": ids(["0", other], f"source_run_id = '{RUN_A}'"),
            "status": ids(["0", other], "status = 'READY'"),
            "type": ids(["0"], "model_type LIKE 'tor%'"),
            "param": ids(["0"], "params.lr = '0.1'"),
            "other only": ids([other]),
            "injection": ids(["0"], "name = 'a'' OR ''1''=''1'"),
        }
        assert found == {
            "name": [a],
            "run": sorted([a, c], key=[c, a].index),  # newest first
            "status": [b],
            "type": [b],
            "param": [a],
            "other only": [c],
            "injection": [],
        }
        assert ids(["0", other], order_by=["name ASC"]) == [a, b, c]
        pages: list[str] = []
        token: str | None = None
        while True:
            page, token = registry.search_logged_models(
                ["0", other], max_results=2, page_token=token
            )
            pages += [m.model_id for m in page]
            if token is None:
                break
        assert sorted(pages) == sorted([a, b, c]) and len(pages) == 3
        refused = {
            "no experiments": _raised(registry.search_logged_models, []),
            "bad filter": _raised(registry.search_logged_models, ["0"], "run_id = 'x'"),
        }
        assert refused == dict.fromkeys(refused, "InvalidInput")


# -- logged-model files ------------------------------------------------------------------------


class TestModelArtifacts:
    @pytest.fixture
    def registry(self, local_registry: RegistryService) -> RegistryService:
        """In process only: the native API does not serve logged models yet."""
        return local_registry

    def test_files_are_logged_listed_like_ls_and_read_back(self, registry: RegistryService):
        model_id = registry.create_logged_model("0").model_id
        for path, data in [
            ("MLmodel", b"flavors: {}"),
            ("model.pkl", b"\x80weights"),
            ("env/conda.yaml", b"deps"),
            ("env/deep/req.txt", b"numpy"),
        ]:
            row = registry.log_model_artifact_stream(model_id, path, io.BytesIO(data))
            assert (row.path, row.size) == (path, len(data))
        root = {(a.path, a.is_dir, a.size) for a in registry.list_model_artifacts(model_id)}
        assert root == {("MLmodel", False, 11), ("model.pkl", False, 8), ("env", True, None)}
        env = [(a.path, a.is_dir) for a in registry.list_model_artifacts(model_id, "env")]
        assert env == [("env/conda.yaml", False), ("env/deep", True)]
        files = [r.path for r in registry.model_artifact_files(model_id, "env")]
        assert files == ["env/conda.yaml", "env/deep/req.txt"]
        with registry.open_model_artifact(model_id, "env/deep/req.txt") as f:
            assert f.read() == b"numpy"
        registry.log_model_artifact_stream(model_id, "MLmodel", io.BytesIO(b"v2"))
        with registry.open_model_artifact(model_id, "./MLmodel") as f:
            assert f.read() == b"v2"
        missing = {
            "file": _raised(registry.open_model_artifact, model_id, "nope"),
            "model": _raised(registry.list_model_artifacts, "m-" + "0" * 32),
        }
        assert missing == dict.fromkeys(missing, "NotFound")

    def test_traversal_and_absolute_paths_are_refused(self, registry: RegistryService):
        model_id = registry.create_logged_model("0").model_id
        bad = ["../x", "a/../../x", "/etc/passwd", "C:/x", "a\\b", "", "nul\x00"]
        outcomes = {
            (call, p): _raised(fn, model_id, p)
            for p in bad
            for call, fn in [
                ("log", lambda m, p: registry.log_model_artifact_stream(m, p, io.BytesIO(b"x"))),
                ("open", registry.open_model_artifact),
                ("list", lambda m, p: registry.list_model_artifacts(m, p or "..")),
            ]
        }
        assert outcomes == dict.fromkeys(outcomes, "InvalidInput")
        assert registry.model_artifact_files(model_id) == []

    def test_gc_keeps_a_logged_models_blobs_and_reclaims_unreferenced_ones(
        self, workspace: Workspace, registry: RegistryService
    ):
        model_id = registry.create_logged_model("0").model_id
        kept = registry.log_model_artifact_stream(model_id, "model.pkl", io.BytesIO(b"weights"))
        dropped = workspace.blobs.put_bytes(b"scratch nobody references")
        report = workspace.gc(grace_seconds=0)
        assert (report.deleted, workspace.blobs.exists(kept.digest)) == (1, True)
        assert not workspace.blobs.exists(dropped)
        registry.delete_logged_model(model_id)  # soft: the files stay readable
        assert workspace.gc(grace_seconds=0).deleted == 0
        with registry.open_model_artifact(model_id, "model.pkl") as f:
            assert f.read() == b"weights"
