"""Hypothesis strategies shared by tests."""

from __future__ import annotations

from hypothesis import strategies as st

from loopline.tracking.search_filter import ATTRIBUTES, Compare

keys = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="`"),
    min_size=1,
    max_size=20,
)
# NUL is refused by the grammar (PostgreSQL cannot store it), so valid filters never hold one.
strings = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=20,
)
numbers = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def compares(draw: st.DrawFn) -> Compare:
    kind = draw(st.sampled_from(["metric", "param", "tag", "attribute"]))
    if kind == "metric":
        return Compare(
            "metric",
            draw(keys),
            draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="])),
            draw(numbers),
        )
    if kind == "attribute":
        attr = draw(st.sampled_from(sorted(ATTRIBUTES)))
        if ATTRIBUTES[attr]:
            op = draw(st.sampled_from(["=", "!=", "<", ">="]))
            return Compare("attribute", attr, op, draw(numbers))
        op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"]))
    else:
        op = draw(
            st.sampled_from(["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"])
        )
    key = attr if kind == "attribute" else draw(keys)
    if op in ("IN", "NOT IN"):
        value: object = tuple(draw(st.lists(strings, min_size=1, max_size=4)))
    elif op.startswith("IS"):
        value = None
    else:
        value = draw(strings)
        trailing = len(value) - len(value.rstrip("\\"))
        if op in ("LIKE", "ILIKE") and trailing % 2:
            value += "\\"  # a pattern may not end in an unfinished escape
    return Compare(kind, key, op, value)  # type: ignore[arg-type]


filters = st.lists(compares(), max_size=5)
