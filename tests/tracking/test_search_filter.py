"""The MLflow search grammar: what parses, what it means, and how bad input fails."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.errors import InvalidInput
from loopline.tracking.search_filter import (
    Compare,
    OrderKey,
    parse_filter,
    parse_order_by,
    render_filter,
)
from tests.strategies import filters


class TestParseFilter:
    def test_the_documented_example_parses_to_typed_comparisons(self):
        text = (
            "metrics.acc > 0.9 and params.lr = '0.01' and tags.team = 'vision' "
            "and attributes.status = 'FINISHED'"
        )
        assert parse_filter(text) == [
            Compare("metric", "acc", ">", 0.9),
            Compare("param", "lr", "=", "0.01"),
            Compare("tag", "team", "=", "vision"),
            Compare("attribute", "status", "=", "FINISHED"),
        ]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("metric.acc>=1", Compare("metric", "acc", ">=", 1.0)),
            ('params."learning rate" = "0.1"', Compare("param", "learning rate", "=", "0.1")),
            ("tags.`a.b c` LIKE 'x%'", Compare("tag", "a.b c", "LIKE", "x%")),
            ("metrics.val.loss < 1e-3", Compare("metric", "val.loss", "<", 0.001)),
            ("tags.note = 'it''s'", Compare("tag", "note", "=", "it's")),
            ("params.opt IN ('adam', 'sgd')", Compare("param", "opt", "IN", ("adam", "sgd"))),
            ("params.opt not in ('adam')", Compare("param", "opt", "NOT IN", ("adam",))),
            ("tags.owner IS NULL", Compare("tag", "owner", "IS NULL", None)),
            ("tags.owner is not null", Compare("tag", "owner", "IS NOT NULL", None)),
            ("status = 'RUNNING'", Compare("attribute", "status", "=", "RUNNING")),
            ("attributes.created > 5", Compare("attribute", "start_time", ">", 5.0)),
            ("run.name ILIKE '%Base%'", Compare("attribute", "run_name", "ILIKE", "%Base%")),
            ("metrics.loss <> -2.5", Compare("metric", "loss", "!=", -2.5)),
        ],
    )
    def test_variants_of_the_grammar(self, text: str, expected: Compare):
        assert parse_filter(text) == [expected]

    @pytest.mark.parametrize("empty", [None, "", "   \n"])
    def test_an_empty_filter_means_no_filter(self, empty: str | None):
        assert parse_filter(empty) == []

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("metrics.acc >", "offset 13"),
            ("metrics.acc > 'high'", "offset 14"),
            ("metrics.acc LIKE '9%'", "offset 12"),
            ("params.lr = 0.1", "offset 12"),
            ("foo.bar = 'x'", "unknown identifier type 'foo' at offset 0"),
            ("attributes.colour = 'x'", "unknown attribute 'colour'"),
            ("metrics.a > 1 OR metrics.b > 1", "OR is not supported (offset 14)"),
            ("metrics.a > 1 metrics.b > 1", "expected AND at offset 14"),
            ("params.a = 'open", 'unexpected character "\'" at offset 11'),
            ("params.a IN 'x'", "'(' to start the IN list"),
            ("params.a IN ('x' 'y')", "',' or ')' in the IN list"),
            ("tags.t IS 'x'", "expected NULL after IS"),
            ("metrics. > 1", "a key after '.'"),
            ("attributes.start_time LIKE '1%'", "cannot be used with attributes.start_time"),
            ("metrics.acc > 1e999", "number 1e999 at offset 14 is out of range"),
        ],
    )
    def test_malformed_filters_name_the_problem_and_its_offset(self, text: str, message: str):
        with pytest.raises(InvalidInput, match="filter") as info:
            parse_filter(text)
        assert message in str(info.value)

    @pytest.mark.parametrize(
        "attack",
        [
            "params.x = '1'; DROP TABLE runs; --'",
            "params.x = '' OR 1=1 --'",
            "tags.`x` = 'a' UNION SELECT * FROM params",
        ],
    )
    def test_injection_attempts_are_either_rejected_or_plain_string_values(self, attack: str):
        try:
            ast = parse_filter(attack)
        except InvalidInput:
            return
        assert all(isinstance(c.value, str | float | tuple) for c in ast)

    @given(filters)
    def test_render_then_parse_returns_the_same_ast(self, ast: list[Compare]):
        assert parse_filter(render_filter(ast)) == ast

    @settings(max_examples=300, deadline=None)  # a loaded CI machine is not a parser bug
    @given(st.text(max_size=80))
    def test_arbitrary_text_parses_or_fails_with_invalid_input_naming_an_offset(self, text: str):
        try:
            parse_filter(text)
        except InvalidInput as exc:
            assert "offset" in str(exc) or "longer than" in str(exc)

    @settings(max_examples=300, deadline=None)  # a loaded CI machine is not a parser bug
    @given(filters, st.integers(min_value=0, max_value=200), st.text(min_size=1, max_size=3))
    def test_corrupted_valid_filters_never_raise_anything_but_invalid_input(
        self, ast: list[Compare], at: int, junk: str
    ):
        text = render_filter(ast)
        at = min(at, len(text))
        try:
            parsed = parse_filter(text[:at] + junk + text[at:])
        except InvalidInput as exc:
            assert "offset" in str(exc) or "longer than" in str(exc)
        else:  # still valid: then it means something, and says it the same way again
            assert parse_filter(render_filter(parsed)) == parsed


class TestParseOrderBy:
    def test_directions_default_to_ascending(self):
        assert parse_order_by(["metrics.acc DESC", "params.lr", "start_time asc"]) == [
            OrderKey("metric", "acc", True),
            OrderKey("param", "lr", False),
            OrderKey("attribute", "start_time", False),
        ]

    @pytest.mark.parametrize(
        ("clause", "message"),
        [
            ("metrics.acc DOWN", "expected ASC or DESC"),
            ("metrics.acc DESC extra", "unexpected 'extra'"),
            ("", "empty clause"),
            ("bogus", "not an identifier"),
        ],
    )
    def test_bad_clauses_are_rejected(self, clause: str, message: str):
        with pytest.raises(InvalidInput, match=message):
            parse_order_by([clause])
