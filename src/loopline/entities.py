"""Plain records shared by the foundation's services and stores: object references, events,
lineage links and blob references. Frozen dataclasses, so they hash, compare and never change
under a caller's feet."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from loopline.errors import InvalidInput

__all__ = ["BlobRef", "Event", "LineageEdge", "NewEvent", "Ref"]

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_ID_LEN = 256


def check_kind(value: str, field_name: str, example: str = "'run', 'dataset_version'") -> str:
    if not isinstance(value, str) or not _KIND.match(value):
        raise InvalidInput(
            f"{field_name} {value!r} is invalid: use 1-64 lowercase letters, digits or '_', "
            f"starting with a letter (e.g. {example})"
        )
    return value


def check_id(value: str, field_name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LEN or "\x00" in value:
        raise InvalidInput(f"{field_name} must be a non-empty string of at most {MAX_ID_LEN} chars")
    return value


@dataclass(frozen=True, order=True)
class Ref:
    """Any object in the lineage graph: ``Ref("run", "a1b2...")``, ``Ref("blob", digest)``."""

    kind: str
    id: str

    def __post_init__(self) -> None:
        check_kind(self.kind, "object kind")
        check_id(self.id, "object id")

    @classmethod
    def parse(cls, text: str) -> Ref:
        """``"run:a1b2"`` -> ``Ref("run", "a1b2")``, the form the CLI accepts."""
        kind, sep, ident = text.partition(":")
        if not sep:
            raise InvalidInput(f"object reference {text!r} must look like KIND:ID, e.g. run:a1b2")
        return cls(kind, ident)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended; the store assigns ``id`` and fills ``time_ms`` if 0."""

    actor: str
    action: str
    object_kind: str
    object_id: str
    details: dict[str, Any] = field(default_factory=dict)
    time_ms: int = 0


@dataclass(frozen=True)
class Event:
    id: int
    time_ms: int
    actor: str
    action: str
    object_kind: str
    object_id: str
    details: dict[str, Any]

    @property
    def object(self) -> Ref:
        return Ref(self.object_kind, self.object_id)


@dataclass(frozen=True)
class LineageEdge:
    """``source`` flowed into ``target`` (``source`` is upstream); ``depth`` 1 is a direct link."""

    source: Ref
    target: Ref
    relation: str
    depth: int = 1


@dataclass(frozen=True)
class BlobRef:
    """A metadata row keeps ``digest`` alive; ``kind='manifest'`` keeps the files it lists alive."""

    digest: str
    owner: Ref
    kind: Literal["file", "manifest"] = "file"


RefLike = Ref | str | tuple[str, str]


def as_ref(value: RefLike, field_name: str = "object") -> Ref:
    """Accept ``Ref``, ``"kind:id"`` or ``(kind, id)``: the forms users naturally type."""
    if isinstance(value, Ref):
        return value
    if isinstance(value, str):
        return Ref.parse(value)
    if isinstance(value, tuple) and len(value) == 2:
        return Ref(*value)
    raise InvalidInput(f"{field_name} must be a Ref, 'kind:id' or (kind, id), got {value!r}")
