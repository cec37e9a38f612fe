"""Semantic version labels for model versions.

Integer versions say *which* registration; the label says *what kind of change* it was, so a
consumer can tell at a glance whether a new version can replace the old one in place:

- **major** when the signature (inputs or outputs) changed: callers may need to change;
- **minor** for a retrain (new files, same signature): a drop-in replacement;
- **patch** when the files are byte-identical to the previous version (metadata only).

The label is computed against the highest-numbered existing version and can be overridden.
"""

from __future__ import annotations

import json
import re
from typing import Any

from loopline.errors import InvalidInput

__all__ = ["check_label", "next_label", "parse_mlmodel", "signature_key"]

_SEMVER = re.compile(r"^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$")
FIRST_LABEL = "1.0.0"


def check_label(label: Any) -> str:
    """A ``MAJOR.MINOR.PATCH`` label (no prefix, no pre-release suffix)."""
    if not isinstance(label, str) or not _SEMVER.match(label.strip()):
        raise InvalidInput(
            f"version_label must look like MAJOR.MINOR.PATCH (e.g. 1.2.0), got {label!r}"
        )
    return label.strip()


def signature_key(signature: Any) -> str | None:
    """A canonical form of an MLmodel signature's inputs and outputs, for comparison (the two
    are JSON strings in MLmodel files; key order and whitespace must not count as a change)."""
    if not isinstance(signature, dict):
        return None

    def canonical(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    return json.dumps(
        [canonical(signature.get("inputs")), canonical(signature.get("outputs"))],
        sort_keys=True,
    )


def next_label(
    previous: str | None,
    *,
    signature_changed: bool,
    files_changed: bool,
) -> str:
    """The label after ``previous`` (None or "" for the first version, or a previous version
    registered before labels existed)."""
    if not previous:
        return FIRST_LABEL
    major, minor, patch = (int(p) for p in check_label(previous).split("."))
    if signature_changed:
        return f"{major + 1}.0.0"
    if files_changed:
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def parse_mlmodel(text: str, where: str = "MLmodel") -> dict[str, Any]:
    """An ``MLmodel`` document: JSON as Loopline writes it, YAML as MLflow does (JSON is YAML,
    but the JSON parser is much faster, so it goes first)."""
    try:
        doc = json.loads(text)
    except ValueError:
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{where} is neither JSON nor YAML: {exc}") from None
    if not isinstance(doc, dict) or "flavors" not in doc:
        raise InvalidInput(f"{where} is not an MLmodel document (no 'flavors')")
    return doc
