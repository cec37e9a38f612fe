"""Page tokens shared by every search API (runs, registered models, model versions, logged
models).

A token is an opaque, URL-safe encoding of the offset of the next page. Opaque, so clients
treat it as MLflow's protocol says (pass it back unchanged) and the encoding can change later
without breaking them; offset-based, so every backend pages the same ordered query alike.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TypeVar

from loopline.errors import InvalidInput

T = TypeVar("T")

__all__ = ["offset_from_token", "page_token", "slice_page"]


def page_token(offset: int | None) -> str | None:
    """The token for the page starting at ``offset``; ``None`` (no next page) stays ``None``."""
    if offset is None:
        return None
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def offset_from_token(token: str | None) -> int:
    """The offset a token stands for; no token means the first page. InvalidInput names the
    token when it was not made by :func:`page_token`."""
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"page_token {token!r} is not valid") from exc
    if offset < 0:
        raise InvalidInput(f"page_token {token!r} is not valid")
    return offset


def slice_page(items: Sequence[T], token: str | None, size: int) -> tuple[list[T], str | None]:
    """One page of an in-memory list (metric history, artifact listings) and the token of the
    next page, ``None`` on the last."""
    start = offset_from_token(token)
    end = start + size
    return list(items[start:end]), page_token(end if end < len(items) else None)
