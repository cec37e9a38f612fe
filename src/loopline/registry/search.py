"""The MLflow registry search grammars, parsed into the tracking filter AST (never into SQL).

    name LIKE 'fraud-%' AND tags.team = 'risk'                 -- registered models
    name = 'fraud' AND run_id IN ('a1…', 'b2…') AND version_number >= 3   -- model versions
    source_run_id = 'a1…' AND status = 'READY'                  -- logged models

Each search has a :class:`Grammar`: the attribute names it accepts, with the operators each
allows, and the key kinds (``tags.<key>``, ``params.<key>``) it accepts. Tokens come from the
run-search tokenizer (:func:`loopline.tracking.search_filter.tokenize`), so quoting, numbers and
error offsets behave exactly as in run search; the result is the same :class:`Compare` AST, which
the SQL store binds as parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from loopline.errors import InvalidInput
from loopline.tracking.search_filter import Compare, OrderKey, Token, tokenize, unquote

__all__ = [
    "EXPERIMENT_GRAMMAR",
    "LOGGED_MODEL_GRAMMAR",
    "MODEL_VERSION_GRAMMAR",
    "REGISTERED_MODEL_GRAMMAR",
    "Grammar",
    "parse_filter",
    "parse_order_by",
]

_STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
_ID_OPS = ("=", "!=", "IN", "NOT IN")
_NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Grammar:
    what: str
    """What is searched, for error messages ('registered model')."""
    attributes: Mapping[str, tuple[str, ...]]
    """Attribute name -> operators it accepts."""
    numeric: frozenset[str] = frozenset()
    key_kinds: Mapping[str, str] = field(default_factory=dict)
    """Prefix -> Compare kind, e.g. ``{"tags": "tag", "tag": "tag"}``."""
    order_fields: tuple[str, ...] = ()
    order_aliases: Mapping[str, str] = field(default_factory=dict)


_TAGS = {"tags": "tag", "tag": "tag"}

REGISTERED_MODEL_GRAMMAR = Grammar(
    what="registered model",
    attributes={"name": _STRING_OPS},
    key_kinds=_TAGS,
    order_fields=("name", "creation_timestamp", "last_updated_timestamp"),
    order_aliases={"timestamp": "last_updated_timestamp"},
)

MODEL_VERSION_GRAMMAR = Grammar(
    what="model version",
    attributes={
        "name": _STRING_OPS,
        "run_id": _ID_OPS,
        "source_path": _STRING_OPS,
        "version_number": _NUMERIC_OPS,
        "current_stage": _ID_OPS,
    },
    numeric=frozenset({"version_number"}),
    key_kinds=_TAGS,
    order_fields=("name", "version_number", "creation_timestamp", "last_updated_timestamp"),
    order_aliases={"timestamp": "last_updated_timestamp"},
)

LOGGED_MODEL_GRAMMAR = Grammar(
    what="logged model",
    attributes={
        "name": _STRING_OPS,
        "source_run_id": _ID_OPS,
        "status": _ID_OPS,
        "model_type": _STRING_OPS,
        "model_id": _ID_OPS,
    },
    key_kinds={**_TAGS, "params": "param", "param": "param"},
    order_fields=("name", "creation_timestamp", "last_updated_timestamp"),
)

EXPERIMENT_GRAMMAR = Grammar(
    what="experiment",
    attributes={
        "name": _STRING_OPS,
        "creation_time": _NUMERIC_OPS,
        "last_update_time": _NUMERIC_OPS,
    },
    numeric=frozenset({"creation_time", "last_update_time"}),
    key_kinds=_TAGS,
    order_fields=("name", "experiment_id", "creation_time", "last_update_time"),
)

_ATTRIBUTE_PREFIXES = ("attributes", "attribute", "attr")


class _Parser:
    def __init__(self, text: str, grammar: Grammar) -> None:
        self.text = text
        self.grammar = grammar
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, expected: str) -> Token:
        tok = self.peek()
        if tok is None:
            raise InvalidInput(
                f"filter: expected {expected} at offset {len(self.text)} (end of filter)"
            )
        self.i += 1
        return tok

    def fail(self, tok: Token, expected: str) -> InvalidInput:
        return InvalidInput(f"filter: expected {expected} at offset {tok.pos}, found {tok.text!r}")

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.type == "word" and tok.text.upper() == word:
            self.i += 1
            return True
        return False

    def _after_dot(self) -> Token | None:
        """The token after an adjacent '.', consuming both; None (consuming nothing) if absent."""
        dot = self.peek()
        if dot is None or dot.text != ".":
            return None
        self.i += 1
        return self.next("a name after '.'")

    def _dotted(self, tok: Token) -> str:
        """Unquoted keys may contain dots (``tags.a.b``) when nothing separates them."""
        key, end = tok.text, tok.pos + len(tok.text)
        while self.i + 1 < len(self.tokens):
            dot, part = self.tokens[self.i], self.tokens[self.i + 1]
            if dot.text != "." or dot.pos != end or part.pos != end + 1:
                break
            if part.type not in ("word", "number"):
                break
            self.i += 2
            key, end = f"{key}.{part.text}", part.pos + len(part.text)
        return key

    def identifier(self, names: Mapping[str, object], *, keys: bool = True) -> tuple[str, str]:
        """``(kind, key)``: ``("attribute", name)`` or, if ``keys``, e.g. ``("tag", key)``."""
        prefixes = [p for p in self.grammar.key_kinds if p.endswith("s")] if keys else []
        valid = ", ".join([*names, *(f"{p}.<key>" for p in prefixes)])
        first = self.next(f"an identifier ({valid})")
        if first.type != "word":
            raise self.fail(first, f"an identifier ({valid})")
        word = first.text.lower()
        if keys and word in self.grammar.key_kinds:
            key_tok = self._after_dot()
            if key_tok is None:
                raise InvalidInput(f"filter: expected '.<key>' after {first.text!r}")
            if key_tok.type in ("btick", "dquote"):
                key = unquote(key_tok)
            elif key_tok.type in ("word", "number"):
                key = self._dotted(key_tok)
            else:
                raise self.fail(key_tok, f"a key after {first.text!r}.")
            if not key:
                raise InvalidInput(f"filter: empty key after {first.text!r} at offset {first.pos}")
            return self.grammar.key_kinds[word], key
        name_tok = first
        if word in _ATTRIBUTE_PREFIXES:
            after = self._after_dot()
            if after is None or after.type != "word":
                raise InvalidInput(
                    f"filter: expected an attribute name after {first.text!r} at offset {first.pos}"
                )
            name_tok = after
        name = name_tok.text
        if name not in names:
            raise InvalidInput(
                f"filter: {name!r} at offset {name_tok.pos} is not searchable for "
                f"{self.grammar.what}s; valid: {valid}"
            )
        return "attribute", name

    def operator(self) -> tuple[str, Token]:
        tok = self.next("a comparison operator")
        if tok.type == "op":
            return ("!=" if tok.text == "<>" else tok.text), tok
        if tok.type == "word":
            word = tok.text.upper()
            if word in ("LIKE", "ILIKE", "IN"):
                return word, tok
            if word == "NOT" and self.keyword("IN"):
                return "NOT IN", tok
        raise self.fail(tok, "a comparison operator")

    def string(self, what: str) -> str:
        tok = self.next(what)
        if tok.type in ("squote", "dquote"):
            return unquote(tok)
        raise self.fail(tok, what)

    def comparison(self) -> Compare:
        kind, key = self.identifier(self.grammar.attributes)
        label = key if kind == "attribute" else f"{kind}s.{key}"
        op, op_tok = self.operator()
        allowed = self.grammar.attributes[key] if kind == "attribute" else _STRING_OPS
        if op not in allowed:
            raise InvalidInput(
                f"filter: operator {op} at offset {op_tok.pos} cannot be used with {label}; "
                f"allowed: {', '.join(allowed)}"
            )
        value: str | float | tuple[str, ...]
        if op in ("IN", "NOT IN"):
            opening = self.next("'(' to start the IN list")
            if opening.text != "(":
                raise self.fail(opening, "'(' to start the IN list")
            items = [self.string("a quoted string in the IN list")]
            while (tok := self.next("',' or ')' in the IN list")).text != ")":
                if tok.text != ",":
                    raise self.fail(tok, "',' or ')' in the IN list")
                items.append(self.string("a quoted string in the IN list"))
            value = tuple(items)
        elif kind == "attribute" and key in self.grammar.numeric:
            tok = self.next(f"a whole number to compare {label} with")
            number = float(tok.text) if tok.type == "number" else math.nan
            if not (math.isfinite(number) and number.is_integer()):
                raise self.fail(tok, f"a whole number to compare {label} with")
            value = number
        else:
            tok_pos = self.peek()
            value = self.string(f"a quoted string to compare {label} with")
            trailing = len(value) - len(value.rstrip("\\"))
            if op in ("LIKE", "ILIKE") and trailing % 2 == 1:
                pos = tok_pos.pos if tok_pos else len(self.text)
                raise InvalidInput(
                    f"filter: the {op} pattern at offset {pos} ends in an unfinished escape "
                    "('\\'); write '\\\\' for a literal backslash"
                )
        return Compare(kind, key, op, value)  # type: ignore[arg-type]

    def parse(self) -> list[Compare]:
        compares = [self.comparison()]
        while self.peek() is not None:
            tok = self.next("AND")
            word = tok.text.upper() if tok.type == "word" else ""
            if word == "OR":
                raise InvalidInput(
                    f"filter: OR is not supported (offset {tok.pos}); run two searches instead"
                )
            if word != "AND":
                raise self.fail(tok, "AND")
            compares.append(self.comparison())
        return compares


def parse_filter(text: str | None, grammar: Grammar) -> list[Compare]:
    """Parse a registry filter; empty or ``None`` means "no filter". InvalidInput names the
    offending token and its offset."""
    if text is None or not text.strip():
        return []
    if len(text) > 100_000:
        raise InvalidInput("filter: longer than 100,000 characters")
    return _Parser(text, grammar).parse()


def parse_order_by(clauses: list[str] | None, grammar: Grammar) -> list[OrderKey]:
    """``["name ASC", "last_updated_timestamp DESC"]`` -> order keys over ``grammar``'s
    orderable attributes."""
    names = {**{n: n for n in grammar.order_fields}, **grammar.order_aliases}
    keys: list[OrderKey] = []
    for clause in clauses or []:
        parser = _Parser(clause, grammar)
        if not parser.tokens:
            raise InvalidInput("order_by: empty clause")
        _, name = parser.identifier(names, keys=False)
        descending = False
        if (tok := parser.peek()) is not None:
            parser.i += 1
            word = tok.text.upper()
            if tok.type != "word" or word not in ("ASC", "DESC"):
                raise InvalidInput(
                    f"order_by {clause!r}: expected ASC or DESC at offset {tok.pos}, "
                    f"found {tok.text!r}"
                )
            descending = word == "DESC"
        if (extra := parser.peek()) is not None:
            raise InvalidInput(
                f"order_by {clause!r}: unexpected {extra.text!r} at offset {extra.pos}"
            )
        keys.append(OrderKey("attribute", names[name], descending))
    return keys
