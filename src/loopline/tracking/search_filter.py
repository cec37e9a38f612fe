"""The MLflow run-search grammar, parsed into a typed AST (never into SQL text).

    metrics.acc > 0.9 and params.lr = '0.01' and tags.`team name` LIKE 'vis%'
    and attributes.status IN ('FINISHED', 'RUNNING') and tags.owner IS NOT NULL

Expressions are joined by AND (MLflow has no OR). The store turns each :class:`Compare` into a
bound-parameter SQL condition, so no filter text ever reaches the database, and the same AST
answers alike on SQLite, PostgreSQL and over HTTP. Errors are :class:`InvalidInput` naming the
offending token and its character offset.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from loopline.errors import InvalidInput

__all__ = [
    "ATTRIBUTES",
    "Compare",
    "OrderKey",
    "Token",
    "parse_filter",
    "parse_order_by",
    "render_filter",
    "tokenize",
    "unquote",
]

Kind = Literal["metric", "param", "tag", "attribute"]
Op = Literal[
    "=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"
]

_KIND_ALIASES: dict[str, Kind] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}

# Run attributes usable in filters and ordering, and whether each is numeric.
ATTRIBUTES: dict[str, bool] = {
    "run_id": False,
    "run_name": False,
    "status": False,
    "user_id": False,
    "artifact_uri": False,
    "experiment_id": False,
    "start_time": True,
    "end_time": True,
}
_ATTRIBUTE_ALIASES = {"created": "start_time", "name": "run_name", "id": "run_id"}

_NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL")
_ALLOWED: dict[Kind, tuple[str, ...]] = {
    "metric": _NUMERIC_OPS,
    "param": _STRING_OPS,
    "tag": _STRING_OPS,
    "attribute": (),  # decided per attribute below
}


@dataclass(frozen=True)
class Compare:
    kind: Kind
    key: str
    op: Op
    value: str | float | tuple[str, ...] | None


@dataclass(frozen=True)
class OrderKey:
    kind: Kind
    key: str
    descending: bool = False


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<squote>'(?:[^']|'')*')
  | (?P<dquote>"(?:[^"]|"")*")
  | (?P<btick>`(?:[^`]|``)*`)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[^\s'"`()=!<>,.]+)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    type: str
    text: str
    pos: int


Token = _Tok
"""A token: ``type`` is one of number, squote, dquote, btick, op, punct, word."""


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InvalidInput(f"filter: unexpected character {text[pos]!r} at offset {pos}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, match.group(), pos))
        pos = match.end()
    return tokens


def tokenize(text: str) -> list[Token]:
    """The tokens of a filter (whitespace dropped), public so other search grammars (the model
    registry's) share this one's quoting, number and error rules instead of copying them."""
    return _tokenize(text)


def unquote(tok: Token) -> str:
    """The text inside a quoted token, with doubled quotes undone; refuses NUL."""
    return _unquote(tok)


def _unquote(tok: _Tok) -> str:
    if "\x00" in tok.text:
        # PostgreSQL refuses NUL in text and SQLite truncates patterns at it: refuse it here,
        # so both backends (and the HTTP API) answer the same way.
        raise InvalidInput(f"filter: NUL character in the quoted text at offset {tok.pos}")
    quote = tok.text[0]
    return tok.text[1:-1].replace(quote * 2, quote)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # -- token helpers -----------------------------------------------------------------------
    def _peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _next(self, expected: str) -> _Tok:
        tok = self._peek()
        if tok is None:
            raise InvalidInput(
                f"filter: expected {expected} at offset {len(self.text)} (end of filter)"
            )
        self.i += 1
        return tok

    def _fail(self, tok: _Tok, expected: str) -> InvalidInput:
        return InvalidInput(f"filter: expected {expected} at offset {tok.pos}, found {tok.text!r}")

    def _dotted(self, tok: _Tok) -> str:
        """An unquoted key may contain dots (``metrics.val.loss``) when nothing separates them."""
        key, end = tok.text, tok.pos + len(tok.text)
        while True:
            dot = self._peek()
            if dot is None or dot.text != "." or dot.pos != end:
                return key
            if self.i + 1 >= len(self.tokens):
                return key
            part = self.tokens[self.i + 1]
            if part.pos != end + 1 or part.type not in ("word", "number"):
                return key
            self.i += 2
            key, end = f"{key}.{part.text}", part.pos + len(part.text)

    def _keyword(self, word: str) -> bool:
        tok = self._peek()
        if tok is not None and tok.type == "word" and tok.text.upper() == word:
            self.i += 1
            return True
        return False

    # -- grammar -----------------------------------------------------------------------------
    def parse(self) -> list[Compare]:
        if not self.tokens:
            return []
        compares = [self._comparison()]
        while self._peek() is not None:
            tok = self._next("AND")
            if tok.type == "word" and tok.text.upper() == "AND":
                compares.append(self._comparison())
            elif tok.type == "word" and tok.text.upper() == "OR":
                raise InvalidInput(
                    f"filter: OR is not supported (offset {tok.pos}); run two searches instead"
                )
            else:
                raise self._fail(tok, "AND")
        return compares

    def identifier(self) -> tuple[Kind, str, _Tok]:
        first = self._next("an identifier such as metrics.acc")
        if first.type != "word":
            raise self._fail(first, "an identifier such as metrics.acc")
        prefix, dot, rest = first.text.partition(".")
        kind_word = prefix.lower()
        if not dot:
            # 'metrics' followed by a '.' token, or a bare attribute name like 'status'
            nxt = self._peek()
            if nxt is not None and nxt.type == "punct" and nxt.text == ".":
                self.i += 1
                key_tok = self._next("a key after '.'")
                if key_tok.type in ("btick", "dquote"):
                    key = _unquote(key_tok)
                elif key_tok.type in ("word", "number"):
                    key = self._dotted(key_tok)
                else:
                    raise self._fail(key_tok, "a key after '.'")
            else:
                attr = _ATTRIBUTE_ALIASES.get(kind_word, kind_word)
                if attr in ATTRIBUTES:
                    return "attribute", attr, first
                raise InvalidInput(
                    f"filter: {first.text!r} at offset {first.pos} is not an identifier; use "
                    "metrics.<key>, params.<key>, tags.<key> or attributes.<name>"
                )
        else:
            key = rest
        if kind_word not in _KIND_ALIASES:
            raise InvalidInput(
                f"filter: unknown identifier type {prefix!r} at offset {first.pos}; use "
                "metrics, params, tags or attributes"
            )
        if not key:
            raise InvalidInput(f"filter: empty key after {prefix!r} at offset {first.pos}")
        kind = _KIND_ALIASES[kind_word]
        if kind == "attribute":
            attr = _ATTRIBUTE_ALIASES.get(key, key)
            if attr not in ATTRIBUTES:
                raise InvalidInput(
                    f"filter: unknown attribute {key!r} at offset {first.pos}; valid: "
                    f"{', '.join(sorted(ATTRIBUTES))}"
                )
            key = attr
        return kind, key, first

    def _operator(self) -> tuple[str, _Tok]:
        tok = self._next("a comparison operator")
        if tok.type == "op":
            return ("!=" if tok.text == "<>" else tok.text), tok
        if tok.type == "word":
            word = tok.text.upper()
            if word in ("LIKE", "ILIKE", "IN"):
                return word, tok
            if word == "NOT":
                if self._keyword("IN"):
                    return "NOT IN", tok
                if self._keyword("LIKE"):
                    raise InvalidInput(f"filter: NOT LIKE is not supported (offset {tok.pos})")
            if word == "IS":
                negate = self._keyword("NOT")
                if self._keyword("NULL"):
                    return ("IS NOT NULL" if negate else "IS NULL"), tok
                raise InvalidInput(f"filter: expected NULL after IS at offset {tok.pos}")
        raise self._fail(tok, "a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN)")

    def _string(self, what: str) -> str:
        tok = self._next(what)
        if tok.type in ("squote", "dquote"):
            return _unquote(tok)
        raise self._fail(tok, what)

    def _comparison(self) -> Compare:
        kind, key, _ = self.identifier()
        label = f"{_PLURAL[kind]}.{key}"
        op, op_tok = self._operator()
        numeric = kind == "metric" or (kind == "attribute" and ATTRIBUTES[key])
        allowed = _NUMERIC_OPS if numeric else _ALLOWED[kind] or _STRING_OPS
        if kind == "attribute" and not numeric:
            allowed = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
        if op not in allowed:
            raise InvalidInput(
                f"filter: operator {op} at offset {op_tok.pos} cannot be used with "
                f"{label}; allowed: {', '.join(allowed)}"
            )
        value: str | float | tuple[str, ...] | None
        if op in ("IS NULL", "IS NOT NULL"):
            value = None
        elif op in ("IN", "NOT IN"):
            opening = self._next("'(' to start the IN list")
            if opening.text != "(":
                raise self._fail(opening, "'(' to start the IN list")
            items = [self._string("a quoted string in the IN list")]
            while True:
                tok = self._next("',' or ')' in the IN list")
                if tok.text == ")":
                    break
                if tok.text != ",":
                    raise self._fail(tok, "',' or ')' in the IN list")
                items.append(self._string("a quoted string in the IN list"))
            value = tuple(items)
        elif numeric:
            tok = self._next("a number")
            if tok.type != "number":
                raise self._fail(tok, f"a number to compare {label} with")
            value = float(tok.text)
            if not math.isfinite(value):  # e.g. 1e999: overflows to inf, cannot be rendered back
                raise InvalidInput(f"filter: number {tok.text} at offset {tok.pos} is out of range")
        else:
            value_tok = self._peek()
            value = self._string(f"a quoted string to compare {label} with")
            if op in ("LIKE", "ILIKE") and _dangling_escape(value):
                assert value_tok is not None
                raise InvalidInput(
                    f"filter: the {op} pattern at offset {value_tok.pos} ends in an unfinished "
                    "escape ('\\'); write '\\\\' for a literal backslash"
                )
        return Compare(kind, key, op, value)  # type: ignore[arg-type]


def _dangling_escape(pattern: str) -> bool:
    """True if the pattern ends in an odd run of backslashes (escaping nothing)."""
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1


def parse_filter(text: str | None) -> list[Compare]:
    """Parse a filter string; empty or ``None`` means "no filter"."""
    if text is None or not text.strip():
        return []
    if len(text) > 100_000:
        raise InvalidInput("filter: longer than 100,000 characters")
    return _Parser(text).parse()


def parse_order_by(clauses: list[str] | None) -> list[OrderKey]:
    """``["metrics.acc DESC", "params.lr", "attributes.start_time ASC"]`` -> order keys."""
    keys: list[OrderKey] = []
    for clause in clauses or []:
        parser = _Parser(clause)
        if not parser.tokens:
            raise InvalidInput("order_by: empty clause")
        kind, key, _ = parser.identifier()
        descending = False
        tok = parser._peek()
        if tok is not None:
            parser.i += 1
            word = tok.text.upper()
            if tok.type != "word" or word not in ("ASC", "DESC"):
                raise InvalidInput(
                    f"order_by {clause!r}: expected ASC or DESC at offset {tok.pos}, "
                    f"found {tok.text!r}"
                )
            descending = word == "DESC"
            if parser._peek() is not None:
                extra = parser._peek()
                assert extra is not None
                raise InvalidInput(
                    f"order_by {clause!r}: unexpected {extra.text!r} at offset {extra.pos}"
                )
        keys.append(OrderKey(kind, key, descending))
    return keys


_PLURAL = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes"}


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _render_key(key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return key
    if "`" not in key:
        return f"`{key}`"
    return '"' + key.replace('"', '""') + '"'


def render_filter(compares: list[Compare]) -> str:
    """The canonical text of an AST; ``parse_filter(render_filter(ast)) == ast``."""
    parts = []
    for c in compares:
        ident = f"{_PLURAL[c.kind]}.{_render_key(c.key)}"
        if c.op in ("IS NULL", "IS NOT NULL"):
            parts.append(f"{ident} {c.op}")
        elif c.op in ("IN", "NOT IN"):
            assert isinstance(c.value, tuple)
            parts.append(f"{ident} {c.op} ({', '.join(_quote(v) for v in c.value)})")
        elif isinstance(c.value, float):
            parts.append(f"{ident} {c.op} {c.value!r}")
        else:
            assert isinstance(c.value, str)
            parts.append(f"{ident} {c.op} {_quote(c.value)}")
    return " AND ".join(parts)
