"""The module-level Python API (``import loopline as ll``): functions that act on the current
workspace, the way ``mlflow.log_metric`` acts on the current tracking store.

The current workspace is opened lazily from the environment and the nearest ``loopline.toml``,
or set explicitly with :func:`use_workspace`. It is per process and guarded by a lock, so
threads share one set of connections.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from loopline.entities import LineageEdge, RefLike
from loopline.workspace import Workspace, open_workspace

__all__ = [
    "current_workspace",
    "downstream",
    "link",
    "record_event",
    "upstream",
    "use_workspace",
]

_lock = threading.Lock()
_current: Workspace | None = None


def current_workspace() -> Workspace:
    """The workspace module-level calls use; opened on first use from ``LOOPLINE_*`` and the
    nearest ``loopline.toml`` (else ``./.loopline``)."""
    global _current
    with _lock:
        if _current is None:
            _current = open_workspace()
        return _current


def use_workspace(workspace: Workspace | str | os.PathLike[str] | None) -> Workspace | None:
    """Make ``workspace`` (or the workspace rooted at a directory) current; ``None`` forgets the
    current one so the next call resolves settings again. Returns the new current workspace."""
    global _current
    from loopline.tracking import fluent

    fluent.reset()  # queued values belong to the workspace being left
    with _lock:
        if _current is not None and _current is not workspace:
            _current.close()
        if workspace is None:
            _current = None
        elif isinstance(workspace, Workspace):
            _current = workspace
        else:
            _current = open_workspace(home=str(Path(workspace)))
        return _current


def record_event(
    actor: str | None,
    action: str,
    object_kind: str,
    object_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an event to the workspace's audit log; ``actor=None`` means the configured actor
    (``LOOPLINE_ACTOR``, default: the OS user)."""
    current_workspace().events.record(actor, action, object_kind, object_id, details)


def link(source: RefLike, target: RefLike, relation: str) -> bool:
    """Record that ``source`` flowed into ``target`` (e.g. a dataset version into a run).
    Objects are ``Ref``, ``"kind:id"`` or ``(kind, id)``. False if already recorded."""
    return current_workspace().lineage.link(source, target, relation)


def upstream(obj: RefLike, max_depth: int = 50) -> list[LineageEdge]:
    """Every edge leading into ``obj``, transitively, nearest first: what made it."""
    return current_workspace().lineage.upstream(obj, max_depth)


def downstream(obj: RefLike, max_depth: int = 50) -> list[LineageEdge]:
    """Every edge leading out of ``obj``, transitively, nearest first: what it affected."""
    return current_workspace().lineage.downstream(obj, max_depth)
