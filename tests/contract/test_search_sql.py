"""Run search in SQL, checked by properties on SQLite and PostgreSQL: every filter the parser
accepts executes (or fails with InvalidInput), the database answers what a pure-Python reading
of the same AST answers, and hostile strings stay plain values.

The database fixture is per test, so each test seeds its runs once and draws many filters
against them with ``st.data()``. The function-scoped-fixture health check is silenced on
purpose: sharing one seeded database across examples is the point.

The reference semantics (MLflow's, made exact where MLflow leaves them open):

* a comparison on a key the run lacks never matches, except ``IS NULL``;
* a NaN metric matches no numeric comparison;
* ``LIKE`` is case-sensitive with the wildcards ``%`` (any characters) and ``_`` (one
  character); a backslash takes the next character literally (PostgreSQL's default, and the
  only way to match a literal ``%``); a pattern ending in a lone backslash matches nothing or
  is InvalidInput;
* ``ILIKE`` is ``LIKE`` after lower-casing both sides, non-ASCII letters included;
* attributes compare as their MLflow wire form: ``experiment_id`` as a string, the times as
  numbers.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.store import tables as t
from loopline.tracking.entities import LifecycleStage, ViewType
from loopline.tracking.search_filter import ATTRIBUTES, Compare, parse_filter, render_filter
from loopline.tracking.service import TrackingService
from loopline.tracking.validation import make_metric
from loopline.workspace import Workspace
from tests.strategies import filters

PROPERTY = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REFERENCE = settings(PROPERTY, max_examples=100)
"""Each example is one query against data already seeded, so these can afford more."""

WORDS = [
    "ResNet", "resnet", "RESNET-50", "vgg", "a%b", "a_b", "axb", "it's", 'say "hi"', "", " ",
    "é", "É", "École", "école", "日本", "0.1", "a;b", "x\\y", "50%",
]  # fmt: skip
"""Stored strings, and the raw material of filter values."""
PIECES = ["%", "_", "\\", "a", "A", "b", "res", "Res", "NET", "net", "é", "É", "'", ";", " ", "5"]
"""Fragments that generated LIKE patterns are glued from."""
PARAM_KEYS = ["model", "lr", "note"]
TAG_KEYS = ["team", "note", "mlflow.user"]
METRIC_KEYS = ["acc", "loss"]
METRIC_VALUES = [0.0, -0.0, -1.5, 0.5, 3.0, 1e10, math.nan, math.inf, -math.inf]
STRING_ATTRIBUTES = sorted(k for k, numeric in ATTRIBUTES.items() if not numeric)
TIMES = [1000, 2000, 2000, 3000, 4000]


@dataclass
class Row:
    """What one seeded run holds, as the reference evaluator reads it."""

    run_id: str
    stage: str
    attributes: dict[str, str | int | None]
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Seeded:
    tracking: TrackingService
    workspace: Workspace
    rows: list[Row]
    experiment_ids: list[str]

    def __repr__(self) -> str:  # hypothesis prints fixtures in failing examples
        return f"Seeded({len(self.rows)} runs)"

    def search(self, compares: list[Compare], view: ViewType = ViewType.ALL) -> set[str]:
        text = render_filter(compares)
        assert parse_filter(text) == compares
        runs, token = self.tracking.search_runs(
            self.experiment_ids, filter_string=text, view=view, max_results=1000
        )
        assert token is None
        return {r.run_id for r in runs}

    def expected(self, compares: list[Compare], view: ViewType = ViewType.ALL) -> set[str]:
        return {
            row.run_id
            for row in self.rows
            if row.stage in view.stages() and all(_matches(row, c) for c in compares)
        }


@pytest.fixture
def workspace(store_uri: str, tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(Settings.for_home(tmp_path / "ws", store_uri=store_uri, actor="tester"))
    yield ws
    ws.close()


@pytest.fixture
def seeded(workspace: Workspace) -> Seeded:
    """Fourteen runs over two experiments, two of them deleted, with values drawn (from a fixed
    seed) out of WORDS and METRIC_VALUES so that generated filters hit, miss and tie."""
    tracking = workspace.tracking
    rng = random.Random(20240611)
    experiment_ids = ["0", tracking.create_experiment("other")]
    rows: list[Row] = []
    for i in range(14):
        name = rng.choice([*WORDS[:12], "Alpha", "alpha", "b%ta"]) or "blank"
        run = tracking.create_run(
            rng.choice(experiment_ids),
            run_name=name,
            start_time=rng.choice(TIMES),
            user_id=rng.choice(["tester", "Tester", "o'brien"]),
        )
        params = {k: rng.choice(WORDS) for k in PARAM_KEYS if rng.random() < 0.7}
        tags = {k: rng.choice(WORDS) for k in TAG_KEYS[:2] if rng.random() < 0.6}
        metrics = {k: rng.choice(METRIC_VALUES) for k in METRIC_KEYS if rng.random() < 0.8}
        tracking.log_batch(
            run.run_id,
            metrics=[make_metric(k, v, 0, 1) for k, v in metrics.items()],
            params=list(params.items()),
            tags=list(tags.items()),
        )
        if i % 3:
            tracking.update_run(run.run_id, status=rng.choice(["FINISHED", "FAILED", "KILLED"]))
        if i % 5 == 4:
            tracking.delete_run(run.run_id)
        info = tracking.get_run(run.run_id).info
        rows.append(
            Row(
                run_id=run.run_id,
                stage=info.lifecycle_stage,
                attributes={name: getattr(info, name) for name in ATTRIBUTES},
                params=params,
                tags={**tags, "mlflow.runName": name, "mlflow.user": info.user_id},
                metrics=metrics,
            )
        )
    return Seeded(tracking, workspace, rows, experiment_ids)


# -- the reference evaluator -------------------------------------------------------------------


def _like(value: str, pattern: str) -> bool:
    regex: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, None)
            if escaped is None:
                return False  # a lone trailing escape: no well-formed pattern, no match
            regex.append(re.escape(escaped))
        elif ch == "%":
            regex.append(".*")
        elif ch == "_":
            regex.append(".")
        else:
            regex.append(re.escape(ch))
    return re.fullmatch("".join(regex), value, re.DOTALL) is not None


def _string_op(op: str, value: str, operand: object) -> bool:
    if op == "=":
        return value == operand
    if op == "!=":
        return value != operand
    if op == "IN":
        return value in operand
    if op == "NOT IN":
        return value not in operand
    if op == "LIKE":
        return _like(value, str(operand))
    if op == "ILIKE":
        return _like(value.lower(), str(operand).lower())
    raise AssertionError(f"no string operator {op}")


def _number_op(op: str, value: float, operand: object) -> bool:
    assert isinstance(operand, float)
    return {
        "=": value == operand,
        "!=": value != operand,
        "<": value < operand,
        "<=": value <= operand,
        ">": value > operand,
        ">=": value >= operand,
    }[op]


def _matches(row: Row, c: Compare) -> bool:
    if c.kind == "metric":
        number = row.metrics.get(c.key)
        return number is not None and not math.isnan(number) and _number_op(c.op, number, c.value)
    if c.kind == "attribute":
        attribute = row.attributes[c.key]
        if attribute is None:
            return False
        if ATTRIBUTES[c.key]:
            return _number_op(c.op, float(attribute), c.value)
        return _string_op(c.op, str(attribute), c.value)
    text = (row.params if c.kind == "param" else row.tags).get(c.key)
    if c.op == "IS NULL":
        return text is None
    if c.op == "IS NOT NULL":
        return text is not None
    return text is not None and _string_op(c.op, text, c.value)


def _lone_trailing_escape(c: Compare) -> bool:
    if c.op not in ("LIKE", "ILIKE") or not isinstance(c.value, str):
        return False
    trailing = len(c.value) - len(c.value.rstrip("\\"))
    return trailing % 2 == 1


# -- strategies over the seeded data -----------------------------------------------------------


def _cmp(kind: str, key: str, op: str, value: object) -> Compare:
    """A Compare from drawn (hence untyped) parts."""
    return Compare(kind, key, op, value)  # type: ignore[arg-type]


metric_values = st.one_of(
    st.sampled_from([v for v in METRIC_VALUES if math.isfinite(v)] + [0.4999, 1e-300]),
    st.floats(allow_nan=False, allow_infinity=False),
)
REWRITES = {
    "keep": lambda ch: ch,
    "swapcase": str.swapcase,
    "one": lambda ch: "_",
    "any": lambda ch: "%",
    "escape": lambda ch: "\\" + ch,
}


@st.composite
def patterns(draw: st.DrawFn, vocabulary: list[str]) -> str:
    """A LIKE pattern bent out of a stored string so that it often matches: characters kept,
    case-swapped, escaped or turned into wildcards, perhaps a dangling ``%`` or backslash; or,
    now and then, glued from PIECES."""
    if draw(st.integers(0, 4)) == 0:
        return "".join(draw(st.lists(st.sampled_from(PIECES), max_size=5)))
    how = st.sampled_from(["keep", "keep", "keep", "swapcase", "one", "any", "escape"])
    bent = [REWRITES[draw(how)](ch) for ch in draw(st.sampled_from(vocabulary))]
    return "".join(bent) + draw(st.sampled_from(["", "", "%", "\\"]))


@st.composite
def string_compare(draw: st.DrawFn, kind: str, key: str, vocabulary: list[str]) -> Compare:
    op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"]))
    stored = st.sampled_from(vocabulary)
    if op in ("IN", "NOT IN"):
        return _cmp(kind, key, op, tuple(draw(st.lists(stored, min_size=1, max_size=4))))
    if op in ("LIKE", "ILIKE"):
        return _cmp(kind, key, op, draw(patterns(vocabulary)))
    return _cmp(kind, key, op, draw(st.one_of(stored, stored.map(str.swapcase))))


@st.composite
def metric_compares(draw: st.DrawFn, rows: list[Row]) -> Compare:
    op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
    return _cmp("metric", draw(st.sampled_from([*METRIC_KEYS, "missing"])), op, draw(metric_values))


@st.composite
def param_and_tag_compares(draw: st.DrawFn, rows: list[Row]) -> Compare:
    kind = draw(st.sampled_from(["param", "tag"]))
    keys = PARAM_KEYS if kind == "param" else TAG_KEYS
    key = draw(st.sampled_from([*keys, "missing", "Model"]))
    if draw(st.integers(0, 4)) == 0:
        return _cmp(kind, key, draw(st.sampled_from(["IS NULL", "IS NOT NULL"])), None)
    return draw(string_compare(kind, key, WORDS))


@st.composite
def attribute_compares(draw: st.DrawFn, rows: list[Row]) -> Compare:
    key = draw(st.sampled_from(sorted(ATTRIBUTES)))
    if ATTRIBUTES[key]:
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
        times = st.sampled_from([float(x) for x in TIMES] + [2500.0])
        return _cmp("attribute", key, op, draw(st.one_of(times, metric_values)))
    vocabulary = sorted({str(r.attributes[key]) for r in rows} | {"01", "", "ResNet"})
    return draw(string_compare("attribute", key, vocabulary))


def any_compare(rows: list[Row]) -> st.SearchStrategy[Compare]:
    return st.one_of(metric_compares(rows), param_and_tag_compares(rows), attribute_compares(rows))


def _outcomes(seeded: Seeded, compares: list[Compare], view: ViewType) -> tuple[object, object]:
    """``(what the database answers, what the reference says)``. A LIKE pattern ending in an
    unfinished escape must be refused with InvalidInput; everything else must match."""
    if any(_lone_trailing_escape(c) for c in compares):
        expected: object = InvalidInput
    else:
        expected = seeded.expected(compares, view)
    try:
        found: object = seeded.search(compares, view)
    except InvalidInput:
        found = InvalidInput
    return found, expected


views = st.sampled_from(list(ViewType))


class TestSqlAgreesWithTheReference:
    @REFERENCE
    @given(data=st.data())
    def test_metric_filters(self, seeded: Seeded, data: st.DataObject):
        compares = [data.draw(metric_compares(seeded.rows))]
        found, expected = _outcomes(seeded, compares, data.draw(views))
        assert found == expected, render_filter(compares)

    @REFERENCE
    @given(data=st.data())
    def test_param_and_tag_filters(self, seeded: Seeded, data: st.DataObject):
        compares = [data.draw(param_and_tag_compares(seeded.rows))]
        found, expected = _outcomes(seeded, compares, data.draw(views))
        assert found == expected, render_filter(compares)

    @REFERENCE
    @given(data=st.data())
    def test_attribute_filters(self, seeded: Seeded, data: st.DataObject):
        compares = [data.draw(attribute_compares(seeded.rows))]
        found, expected = _outcomes(seeded, compares, data.draw(views))
        assert found == expected, render_filter(compares)

    @REFERENCE
    @given(data=st.data())
    def test_conjunctions_of_any_filters(self, seeded: Seeded, data: st.DataObject):
        compares = data.draw(st.lists(any_compare(seeded.rows), min_size=2, max_size=4))
        found, expected = _outcomes(seeded, compares, data.draw(views))
        assert found == expected, render_filter(compares)


# -- every accepted filter executes ------------------------------------------------------------

HOSTILE = [
    "\x00", "a\x00b", "\\", "a\\", "%\\", "99999999999999999999", "-99999999999999999999",
    "0", "1", "%", "_", "\\%", "' OR 1=1 --", "'; DROP TABLE runs; --", "日本", "\u202e",
]  # fmt: skip
"""Values that have broken SQL layers: NUL bytes, dangling escapes, out-of-range integers."""


@st.composite
def hostile_compares(draw: st.DrawFn) -> Compare:
    kind = draw(st.sampled_from(["metric", "param", "tag", "attribute"]))
    if kind == "metric" or (kind == "attribute" and draw(st.booleans())):
        key = "acc" if kind == "metric" else draw(st.sampled_from(["start_time", "end_time"]))
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
        extremes = [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 1e19, -1e19]
        return _cmp(kind, key, op, draw(st.sampled_from(extremes)))
    # experiment_id twice: it is the one string attribute stored as an integer
    keys = st.sampled_from([*STRING_ATTRIBUTES, "experiment_id"])
    key = draw(keys) if kind == "attribute" else "model"
    op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"]))
    values = st.sampled_from(HOSTILE)
    if op in ("IN", "NOT IN"):
        return _cmp(kind, key, op, tuple(draw(st.lists(values, min_size=1, max_size=3))))
    return _cmp(kind, key, op, draw(values))


filter_texts = st.one_of(
    filters.map(render_filter),
    st.lists(hostile_compares(), min_size=1, max_size=3).map(render_filter),
    st.text(max_size=60),
)
order_bys = st.lists(
    st.sampled_from(
        ["metrics.acc DESC", "params.model", "tags.`it's`", "attributes.end_time DESC", "status"]
    ),
    max_size=2,
)


class TestAcceptedFiltersExecute:
    @PROPERTY
    @given(data=st.data())
    def test_every_parsed_filter_runs_or_raises_invalid_input(
        self, seeded: Seeded, data: st.DataObject
    ):
        text = data.draw(filter_texts, label="filter")
        try:
            parse_filter(text)
        except InvalidInput as exc:
            assert "offset" in str(exc) or "longer than" in str(exc)
            return
        # Parsed means executable: no database error, and only seeded runs come back.
        runs, _ = seeded.tracking.search_runs(
            seeded.experiment_ids, filter_string=text, order_by=data.draw(order_bys)
        )
        assert {r.run_id for r in runs} <= {row.run_id for row in seeded.rows}


# -- injection ---------------------------------------------------------------------------------

ATTACKS = [
    "'", "' OR 1=1 --", "' OR '1'='1", "'; DROP TABLE runs; --", "\" OR \"\"=\"",
    "' UNION SELECT run_id FROM runs --", "); DELETE FROM params; --", "%' OR '1'='1",
    "`", "/*", "*/ OR 1=1", "\\'", "1; UPDATE runs SET status='KILLED'",
]  # fmt: skip
attacks = st.lists(st.sampled_from(ATTACKS), min_size=1, max_size=3).map("".join)


def _row_counts(workspace: Workspace) -> dict[str, int]:
    with workspace.database.read() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in t.metadata.sorted_tables
            if table.name != "workspace_meta"
        }


class TestInjection:
    @PROPERTY
    @given(data=st.data())
    def test_attacks_as_values_match_nothing_and_change_nothing(
        self, seeded: Seeded, data: st.DataObject
    ):
        before = _row_counts(seeded.workspace)
        attack = data.draw(attacks, label="attack")
        kind, key = data.draw(
            st.sampled_from(
                [("param", "model"), ("tag", "team"), ("attribute", "run_name"),
                 ("attribute", "status"), ("attribute", "run_id"), ("attribute", "experiment_id")]
            )
        )  # fmt: skip
        op = data.draw(st.sampled_from(["=", "LIKE", "ILIKE", "IN"]))
        value = (attack,) if op == "IN" else attack
        compare = _cmp(kind, key, op, value)
        assert seeded.search([compare]) == set()
        # Spliced in naively, an attack must fail to parse or stay inside a value.
        identifier = render_filter([_cmp(kind, key, "=", "x")]).removesuffix(" = 'x'")
        naive = f"{identifier} = '{attack}'"
        with contextlib.suppress(InvalidInput):
            seeded.tracking.search_runs(seeded.experiment_ids, filter_string=naive)
        assert _row_counts(seeded.workspace) == before

    @PROPERTY
    @given(data=st.data())
    def test_attacks_as_keys_and_order_keys_change_nothing(
        self, seeded: Seeded, data: st.DataObject
    ):
        before = _row_counts(seeded.workspace)
        attack = data.draw(attacks, label="attack")
        key = attack.replace("`", "")
        compare = _cmp(data.draw(st.sampled_from(["param", "tag"])), key or "k", "IS NULL", None)
        assert seeded.search([compare]) == seeded.expected([compare])
        runs, _ = seeded.tracking.search_runs(
            seeded.experiment_ids, order_by=[f"params.`{key or 'k'}` DESC"], max_results=1000
        )
        assert len(runs) == len([r for r in seeded.rows if r.stage == LifecycleStage.ACTIVE])
        assert _row_counts(seeded.workspace) == before


# -- the cases the properties found, pinned ----------------------------------------------------


def _names(
    tracking: TrackingService, text: str, experiment_ids: list[str] | None = None
) -> list[str]:
    runs, _ = tracking.search_runs(experiment_ids, filter_string=text)
    return sorted(r.info.run_name for r in runs)


@pytest.fixture
def tracking(workspace: Workspace) -> TrackingService:
    return workspace.tracking


def _runs_with_param(tracking: TrackingService, values: dict[str, str]) -> None:
    for name, value in values.items():
        run_id = tracking.create_run(run_name=name).run_id
        tracking.log_batch(run_id, params=[("p", value)])


class TestFilterEdgeCases:
    def test_a_nul_character_in_a_value_matches_nothing_or_is_invalid_input(
        self, tracking: TrackingService
    ):
        _runs_with_param(tracking, {"r": "a"})
        for text in ["params.p = 'a\x00'", "params.p LIKE '%\x00%'", "params.p IN ('\x00')"]:
            with contextlib.suppress(InvalidInput):
                assert _names(tracking, text) == []

    def test_a_backslash_takes_the_next_like_character_literally(self, tracking: TrackingService):
        _runs_with_param(tracking, {"pct": "a%b", "slash": "a\\b", "x": "axb"})
        assert {
            text: _names(tracking, text)
            for text in [
                "params.p LIKE 'a\\%b'",
                "params.p LIKE 'a\\\\b'",
                "params.p ILIKE 'A\\_B'",
            ]
        } == {
            "params.p LIKE 'a\\%b'": ["pct"],
            "params.p LIKE 'a\\\\b'": ["slash"],
            "params.p ILIKE 'A\\_B'": [],
        }

    def test_a_like_pattern_ending_in_a_lone_backslash_is_invalid_input(
        self, tracking: TrackingService
    ):
        """The grammar refuses an unfinished escape, naming it, on every backend."""
        _runs_with_param(tracking, {"slash": "a\\"})
        for text in ["params.p LIKE 'a\\'", "params.p ILIKE 'A\\'", "run_name LIKE '\\'"]:
            with pytest.raises(InvalidInput, match="unfinished escape"):
                _names(tracking, text)
        assert _names(tracking, "params.p LIKE 'a\\\\'") == ["slash"]

    def test_ilike_folds_non_ascii_letters(self, tracking: TrackingService):
        _runs_with_param(tracking, {"upper": "École", "lower": "école", "other": "ecole"})
        assert _names(tracking, "params.p ILIKE 'é%'") == ["lower", "upper"]
        assert _names(tracking, "params.p ILIKE 'ÉCOLE'") == ["lower", "upper"]

    def test_experiment_id_compares_as_a_string_with_every_string_operator(
        self, tracking: TrackingService
    ):
        other = tracking.create_experiment("other")
        tracking.create_run("0", run_name="d")
        tracking.create_run(other, run_name="o")
        both = ["0", other]
        texts = {
            f"attributes.experiment_id = '{other}'": ["o"],
            f"attributes.experiment_id LIKE '{other}'": ["o"],
            f"attributes.experiment_id ILIKE '{other}'": ["o"],
            "attributes.experiment_id LIKE '%'": ["d", "o"],
            f"attributes.experiment_id IN ('{other}', 'nope')": ["o"],
            f"attributes.experiment_id NOT IN ('{other}', 'nope')": ["d"],
        }
        outcomes = {}
        for text in texts:
            try:
                outcomes[text] = _names(tracking, text, both)
            except Exception as exc:
                outcomes[text] = [type(exc).__name__]
        assert outcomes == texts

    @pytest.mark.parametrize("number", ["99999999999999999999", "-99999999999999999999"])
    def test_an_out_of_range_experiment_id_matches_nothing(
        self, tracking: TrackingService, number: str
    ):
        tracking.create_run("0", run_name="d")
        assert _names(tracking, f"attributes.experiment_id = '{number}'") == []
