"""Checks run at the call site, before anything is queued: a bad value must fail where the user
wrote it, not later in a background writer thread. Limits follow MLflow's, so anything Loopline
accepts the MLflow protocol accepts too."""

from __future__ import annotations

import math
import numbers
import re
import time
from typing import Any

from loopline.errors import InvalidInput
from loopline.tracking.entities import Metric

__all__ = [
    "MAX_KEY_LEN",
    "MAX_PARAM_VALUE_LEN",
    "MAX_TAG_VALUE_LEN",
    "check_key",
    "check_run_id",
    "make_metric",
    "param_value",
    "tag_value",
]

MAX_KEY_LEN = 250
MAX_PARAM_VALUE_LEN = 6000
MAX_TAG_VALUE_LEN = 8000
MAX_EXPERIMENT_NAME_LEN = 256
_KEY = re.compile(r"^[\w\-. /:]+$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


_valid_keys: set[str] = set()
"""Keys already accepted: a training loop logs the same few keys millions of times."""


def check_key(key: Any, what: str) -> str:
    if key in _valid_keys:
        return key  # type: ignore[no-any-return]
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{what} key must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY_LEN:
        raise InvalidInput(f"{what} key {key[:40]!r}... is longer than {MAX_KEY_LEN} characters")
    if not _KEY.match(key):
        raise InvalidInput(
            f"{what} key {key!r} may only contain letters, digits, '_', '-', '.', ' ', ':' and '/'"
        )
    if any(part in ("..", "") for part in key.split("/")) and "/" in key:
        raise InvalidInput(f"{what} key {key!r} must not contain empty or '..' path segments")
    if len(_valid_keys) < 100_000:
        _valid_keys.add(key)
    return key


def check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise InvalidInput(f"run id {run_id!r} is not valid: expected 32 lowercase hex characters")
    return run_id


def make_metric(key: str, value: Any, step: Any = None, timestamp: Any = None) -> Metric:
    check_key(key, "metric")
    # Fast path for the overwhelmingly common case: plain float/int values and steps.
    tv, ts, tt = type(value), type(step), type(timestamp)
    if (tv is float or tv is int) and (ts is int or step is None):
        if timestamp is None:
            return Metric(key, float(value), time.time_ns() // 1_000_000, step or 0)
        if tt is int:
            return Metric(key, float(value), timestamp, step or 0)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # numpy scalars are numbers.Real; strings, None and arrays are not.
        if hasattr(value, "item") and getattr(value, "shape", None) == ():
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidInput(
                f"metric {key!r}: value {value!r} is not a number (got {type(value).__name__})"
            )
    if step is None:
        step = 0
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInput(f"metric {key!r}: step must be an integer, got {step!r}")
    if timestamp is None:
        timestamp = time.time_ns() // 1_000_000
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        raise InvalidInput(
            f"metric {key!r}: timestamp must be integer milliseconds, got {timestamp!r}"
        )
    return Metric(key, float(value), int(timestamp), int(step))


def _text_value(kind: str, key: str, value: Any, limit: int) -> str:
    check_key(key, kind)
    text = str(value)
    if len(text) > limit:
        raise InvalidInput(f"{kind} {key!r}: value is {len(text)} characters; the limit is {limit}")
    return text


def param_value(key: str, value: Any) -> str:
    return _text_value("param", key, value, MAX_PARAM_VALUE_LEN)


def tag_value(key: str, value: Any) -> str:
    return _text_value("tag", key, value, MAX_TAG_VALUE_LEN)


def is_nan(value: float) -> bool:
    return math.isnan(value)
