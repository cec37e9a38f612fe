"""Lineage: a directed graph of how objects flowed into each other.

An edge ``source -> target`` means ``source`` was used to make ``target`` (a dataset version
feeds a run, a run produces a model version, a model version serves a prediction). So
``upstream(x)`` answers "what made x?" and ``downstream(x)`` answers "what did x affect?".
"""

from __future__ import annotations

from collections.abc import Iterable

from loopline.entities import LineageEdge, Ref, RefLike, as_ref
from loopline.store.base import MetadataStore

__all__ = ["DEFAULT_MAX_DEPTH", "LineageGraph"]

DEFAULT_MAX_DEPTH = 50


class LineageGraph:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def link(self, source: RefLike, target: RefLike, relation: str) -> bool:
        """Record ``source -> target``; returns False if the edge was already recorded."""
        return self._store.add_link(as_ref(source, "source"), as_ref(target, "target"), relation)

    def upstream(self, obj: RefLike, max_depth: int = DEFAULT_MAX_DEPTH) -> list[LineageEdge]:
        """Every edge leading into ``obj``, transitively, nearest first."""
        return self._store.walk_lineage(as_ref(obj), "upstream", max_depth)

    def downstream(self, obj: RefLike, max_depth: int = DEFAULT_MAX_DEPTH) -> list[LineageEdge]:
        """Every edge leading out of ``obj``, transitively, nearest first."""
        return self._store.walk_lineage(as_ref(obj), "downstream", max_depth)

    def upstream_objects(self, obj: RefLike, max_depth: int = DEFAULT_MAX_DEPTH) -> list[Ref]:
        return _unique(e.source for e in self.upstream(obj, max_depth))

    def downstream_objects(self, obj: RefLike, max_depth: int = DEFAULT_MAX_DEPTH) -> list[Ref]:
        return _unique(e.target for e in self.downstream(obj, max_depth))


def _unique(refs: Iterable[Ref]) -> list[Ref]:
    return list(dict.fromkeys(refs))  # keeps nearest-first order
