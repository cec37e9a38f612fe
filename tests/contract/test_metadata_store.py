"""The metadata store contract, run against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from loopline.entities import BlobRef, NewEvent, Ref
from loopline.errors import InvalidInput, NotFound
from loopline.store.base import MetadataStore
from loopline.workspace import make_store


def _event(i: int, **overrides: object) -> NewEvent:
    values: dict[str, object] = {
        "actor": "alice",
        "action": "thing.did",
        "object_kind": "run",
        "object_id": f"r{i}",
        "details": {"i": i},
    }
    values.update(overrides)
    return NewEvent(**values)  # type: ignore[arg-type]


class TestSchema:
    def test_opening_migrates_to_the_latest_revision(self, store: MetadataStore):
        assert store.schema_revision() == store.latest_revision()

    def test_upgrade_on_a_current_schema_is_a_no_op(self, store: MetadataStore):
        assert store.upgrade() == store.latest_revision()
        assert store.schema_revision() == store.latest_revision()

    def test_an_unmigrated_store_reports_no_revision_until_upgraded(self, store_uri: str):
        fresh = make_store(store_uri, migrate_on_open=False)
        try:
            assert fresh.schema_revision() is None
            assert fresh.upgrade() == fresh.latest_revision()
            assert fresh.schema_revision() == fresh.latest_revision()
        finally:
            fresh.close()

    def test_data_survives_reopening(self, store_uri: str):
        first = make_store(store_uri)
        first.append_events([_event(1)])
        first.close()
        second = make_store(store_uri)
        try:
            assert [e.object_id for e in second.list_events()] == ["r1"]
        finally:
            second.close()


class TestWorkspaceMeta:
    def test_get_of_an_unset_key_raises_not_found(self, store: MetadataStore):
        with pytest.raises(NotFound, match="nope"):
            store.get_meta("nope")

    def test_set_overwrites_by_default(self, store: MetadataStore):
        store.set_meta("k", "one")
        assert store.set_meta("k", "two") == "two"
        assert store.get_meta("k") == "two"

    def test_set_without_overwrite_keeps_the_first_value(self, store: MetadataStore):
        assert store.set_meta("id", "first", overwrite=False) == "first"
        assert store.set_meta("id", "second", overwrite=False) == "first"
        assert store.get_meta("id") == "first"

    def test_an_empty_key_is_rejected(self, store: MetadataStore):
        with pytest.raises(InvalidInput, match="key"):
            store.set_meta("", "v")


class TestEvents:
    def test_events_come_back_in_append_order_with_ids_and_details(self, store: MetadataStore):
        assert store.append_events(_event(i) for i in range(3)) == 3
        events = store.list_events()
        assert [e.object_id for e in events] == ["r0", "r1", "r2"]
        assert [e.details for e in events] == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert events[0].id < events[1].id < events[2].id
        assert all(e.time_ms > 1_600_000_000_000 for e in events)
        assert events[0].object == Ref("run", "r0")

    def test_an_explicit_time_is_kept(self, store: MetadataStore):
        store.append_events([_event(0, time_ms=1_234)])
        assert store.list_events()[0].time_ms == 1_234

    def test_filters_combine(self, store: MetadataStore):
        store.append_events(
            [
                _event(1),
                _event(2, action="other.thing"),
                _event(1, actor="bob"),
                _event(3, object_kind="model_version"),
            ]
        )
        assert store.count_events() == 4
        assert store.count_events(object_kind="run", object_id="r1") == 2
        assert [e.actor for e in store.list_events(object_id="r1", actor="bob")] == ["bob"]
        assert store.count_events(action="other.thing") == 1
        assert [e.object_kind for e in store.list_events(object_kind="model_version")] == [
            "model_version"
        ]

    def test_paging_forward_and_newest_first(self, store: MetadataStore):
        store.append_events(_event(i) for i in range(10))
        page1 = store.list_events(limit=4)
        page2 = store.list_events(limit=4, after_id=page1[-1].id)
        assert [e.object_id for e in page1 + page2] == [f"r{i}" for i in range(8)]
        newest = store.list_events(limit=3, newest_first=True)
        assert [e.object_id for e in newest] == ["r9", "r8", "r7"]
        older = store.list_events(limit=3, newest_first=True, after_id=newest[-1].id)
        assert [e.object_id for e in older] == ["r6", "r5", "r4"]

    def test_a_large_lazy_batch_is_stored_whole(self, store: MetadataStore):
        assert store.append_events(_event(i) for i in range(2_345)) == 2_345
        assert store.count_events() == 2_345

    def test_a_bad_event_in_a_batch_stores_nothing_from_that_batch(self, store: MetadataStore):
        """The batch is one transaction: an invalid item rolls back the items before it."""
        store.append_events([_event(0)])
        batch = [_event(i) for i in range(1, 700)] + [_event(700, object_kind="Bad Kind")]
        with pytest.raises(InvalidInput, match="object_kind"):
            store.append_events(batch)
        assert store.count_events() == 1

    def test_an_iterator_that_raises_stores_nothing(self, store: MetadataStore):
        def broken():
            yield from (_event(i) for i in range(600))
            raise RuntimeError("source failed")

        with pytest.raises(RuntimeError):
            store.append_events(broken())
        assert store.count_events() == 0

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("object_kind", "", "object_kind"),
            ("object_id", "", "object_id"),
            ("action", "", "action"),
            ("actor", "", "actor"),
            ("details", {"x": object()}, "JSON"),
        ],
    )
    def test_invalid_events_name_the_field(
        self, store: MetadataStore, field: str, value: object, message: str
    ):
        with pytest.raises(InvalidInput, match=message):
            store.append_events([_event(0, **{field: value})])

    def test_unicode_and_nested_details_round_trip(self, store: MetadataStore):
        details = {"name": "Zoë ✓ 数据", "nested": {"list": [1, 2.5, None, True]}}
        store.append_events([_event(0, details=details, object_id="ünïcode/id:1")])
        event = store.list_events()[0]
        assert event.details == details
        assert event.object_id == "ünïcode/id:1"

    def test_a_zero_limit_is_rejected(self, store: MetadataStore):
        with pytest.raises(InvalidInput, match="limit"):
            store.list_events(limit=0)


class TestLineage:
    @pytest.fixture
    def graph(self, store: MetadataStore) -> MetadataStore:
        """data -> run -> model -> deployment, code -> run, model -> report."""
        links = [
            (Ref("dataset_version", "d1"), Ref("run", "r1"), "trained_on"),
            (Ref("code", "c1"), Ref("run", "r1"), "ran_code"),
            (Ref("run", "r1"), Ref("model_version", "m1"), "produced"),
            (Ref("model_version", "m1"), Ref("deployment", "p1"), "served_by"),
            (Ref("model_version", "m1"), Ref("report", "q1"), "evaluated_in"),
        ]
        for source, target, relation in links:
            assert store.add_link(source, target, relation) is True
        return store

    def test_upstream_walks_against_the_flow_nearest_first(self, graph: MetadataStore):
        edges = graph.walk_lineage(Ref("deployment", "p1"), "upstream", 50)
        assert [(str(e.source), e.depth) for e in edges] == [
            ("model_version:m1", 1),
            ("run:r1", 2),
            ("code:c1", 3),
            ("dataset_version:d1", 3),
        ]

    def test_downstream_walks_with_the_flow(self, graph: MetadataStore):
        edges = graph.walk_lineage(Ref("dataset_version", "d1"), "downstream", 50)
        assert {(str(e.target), e.depth) for e in edges} == {
            ("run:r1", 1),
            ("model_version:m1", 2),
            ("deployment:p1", 3),
            ("report:q1", 3),
        }

    def test_max_depth_limits_the_walk(self, graph: MetadataStore):
        edges = graph.walk_lineage(Ref("deployment", "p1"), "upstream", 2)
        assert {str(e.source) for e in edges} == {"model_version:m1", "run:r1"}

    def test_an_unknown_object_has_no_lineage(self, graph: MetadataStore):
        assert graph.walk_lineage(Ref("run", "nobody"), "upstream", 50) == []

    def test_linking_twice_is_idempotent(self, store: MetadataStore):
        a, b = Ref("run", "a"), Ref("model_version", "b")
        assert store.add_link(a, b, "produced") is True
        assert store.add_link(a, b, "produced") is False
        assert store.add_link(a, b, "other") is True
        assert len(store.walk_lineage(b, "upstream", 5)) == 2

    def test_cycles_terminate_and_list_each_edge_once(self, store: MetadataStore):
        a, b, c = Ref("node", "a"), Ref("node", "b"), Ref("node", "c")
        store.add_link(a, b, "feeds")
        store.add_link(b, c, "feeds")
        store.add_link(c, a, "feeds")
        edges = store.walk_lineage(a, "downstream", 50)
        assert [(str(e.source), str(e.target), e.depth) for e in edges] == [
            ("node:a", "node:b", 1),
            ("node:b", "node:c", 2),
            ("node:c", "node:a", 3),
        ]

    def test_self_links_and_bad_relations_are_rejected(self, store: MetadataStore):
        with pytest.raises(InvalidInput, match="itself"):
            store.add_link(Ref("run", "a"), Ref("run", "a"), "x")
        with pytest.raises(InvalidInput, match="relation"):
            store.add_link(Ref("run", "a"), Ref("run", "b"), "Not Valid")

    def test_bad_walk_arguments_are_rejected(self, store: MetadataStore):
        with pytest.raises(InvalidInput, match="direction"):
            store.walk_lineage(Ref("run", "a"), "sideways", 5)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="max_depth"):
            store.walk_lineage(Ref("run", "a"), "upstream", 0)


class TestBlobRefs:
    D1, D2, D3 = "1" * 64, "2" * 64, "3" * 64

    def test_refs_are_listed_once_per_digest(self, store: MetadataStore):
        store.add_blob_refs(
            [
                BlobRef(self.D1, Ref("run", "a")),
                BlobRef(self.D1, Ref("run", "b")),
                BlobRef(self.D2, Ref("dataset_version", "v1"), "manifest"),
            ]
        )
        store.add_blob_refs([BlobRef(self.D1, Ref("run", "a"))])  # idempotent
        assert sorted(store.iter_blob_refs()) == [(self.D1, "file"), (self.D2, "manifest")]

    def test_removing_an_owner_drops_only_its_refs(self, store: MetadataStore):
        store.add_blob_refs(
            [
                BlobRef(self.D1, Ref("run", "a")),
                BlobRef(self.D3, Ref("run", "a")),
                BlobRef(self.D1, Ref("run", "b")),
            ]
        )
        assert store.remove_blob_refs(Ref("run", "a")) == 2
        assert list(store.iter_blob_refs()) == [(self.D1, "file")]

    def test_an_unknown_ref_kind_is_rejected(self, store: MetadataStore):
        with pytest.raises(InvalidInput, match="kind"):
            store.add_blob_refs([BlobRef(self.D1, Ref("run", "a"), "folder")])  # type: ignore[arg-type]
        assert list(store.iter_blob_refs()) == []
