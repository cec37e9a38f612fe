"""Pinned requirements for serving a model: every package the server needs, at the versions
the model was trained with where Loopline captured them (the run's ``loopline/requirements.txt``),
else at this machine's installed versions, with the source of each pin kept for the README of
a container build context."""

from __future__ import annotations

import importlib.metadata
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from loopline.errors import InvalidInput, NotFound
from loopline.workspace import Workspace

__all__ = ["CAPTURED_REQUIREMENTS", "Pins", "captured_requirements", "pin_requirements"]

CAPTURED_REQUIREMENTS = "loopline/requirements.txt"
"""Where :mod:`loopline.tracking.capture` stores a run's installed packages."""
# The MLflow client is never needed to serve: Loopline reads MLmodel itself. MLflow-written
# models list it in their requirements; installing it would add hundreds of MB for nothing.
_NOT_NEEDED_TO_SERVE = frozenset({"mlflow", "mlflow-skinny"})

_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    r"(?:\[(?P<extras>[^\]]*)\])?\s*(?P<spec>[^;]*?)\s*(?:;\s*(?P<marker>.*?))?\s*$"
)
_EXTRA_MARKER = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")
_PINNED = re.compile(r"^==\s*(?P<version>[^,\s]+)$")


def _normalize(name: str) -> str:
    """PEP 503 name: ``Scikit_Learn`` and ``scikit-learn`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _read_pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a pip freeze-like file, by normalized name."""
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, sep, version = line.partition("==")
        if sep and name.strip() and version.strip():
            pins[_normalize(name.strip())] = version.strip()
    return pins


@dataclass
class _Need:
    name: str
    extras: set[str] = field(default_factory=set)
    markers: set[str | None] = field(default_factory=set)
    spec: str = ""
    model_pin: str | None = None


@dataclass(frozen=True)
class Pins:
    """The pinned requirement lines and where each version came from."""

    lines: list[str]
    sources: dict[str, str]
    """Package -> ``model`` (the model's own requirements.txt), ``captured`` (the run's
    captured environment), ``installed`` (this machine), ``conditional`` (its environment
    marker did not hold here, so nothing was installed to pin) or ``unpinned`` (known
    nowhere)."""
    dropped: list[str] = field(default_factory=list)
    """Model requirements left out because serving does not need them (the MLflow client)."""

    def by_source(self, source: str) -> list[str]:
        return sorted(name for name, where in self.sources.items() if where == source)


def _parse(line: str) -> tuple[str, set[str], str, str | None] | None:
    match = _REQUIREMENT.match(line.strip())
    if not match or match["spec"].startswith("@"):  # a direct URL: nothing to pin
        return None
    extras = {e.strip() for e in (match["extras"] or "").split(",") if e.strip()}
    return match["name"], extras, match["spec"].replace(" ", ""), match["marker"] or None


def _installed() -> dict[str, importlib.metadata.Distribution]:
    found: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            found.setdefault(_normalize(name), dist)
    return found


def pin_requirements(
    model_requirements: str,
    captured: Mapping[str, str] | None,
    roots: Iterable[str] = ("loopline",),
) -> Pins:
    """Pin the model's requirements, ``roots`` and everything they depend on.

    Dependencies are walked through this machine's installed package metadata (extras only
    when asked for; other environment markers are kept on the line, for pip to judge on the
    target). Each version is the model's own pin if it has one, else the captured one, else
    the installed one; a package none of them knows stays as its requirement said."""
    installed = _installed()
    captured = {_normalize(k): v for k, v in (captured or {}).items()}
    needs: dict[str, _Need] = {}
    dropped: list[str] = []
    queue: list[tuple[str, set[str], str, str | None]] = []
    for raw in model_requirements.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue  # comments and pip options (-r, --index-url) are not packages
        parsed = _parse(line)
        if parsed is None:
            raise InvalidInput(f"model requirement {line!r} cannot be pinned; fix the model's")
        if _normalize(parsed[0]) in _NOT_NEEDED_TO_SERVE:
            dropped.append(line)
            continue
        queue.append(parsed)
    queue.extend((root, set(), "", None) for root in roots)
    model_pins = {
        _normalize(name): m["version"]
        for name, _, spec, _ in queue
        if (m := _PINNED.match(spec)) is not None
    }
    while queue:
        name, extras, spec, marker = queue.pop(0)
        key = _normalize(name)
        need = needs.get(key)
        fresh = need is None
        if need is None:
            need = needs[key] = _Need(name, spec=spec, model_pin=model_pins.get(key))
        new_extras = extras - need.extras
        need.extras |= extras
        need.markers.add(marker)
        dist = installed.get(key)
        if dist is None or not (fresh or new_extras):
            continue
        # Children of a conditional requirement are walked as if unconditional: they were
        # installed here because the condition held, and the target is Linux like this is.
        for requirement in dist.requires or []:
            parsed = _parse(requirement)
            if parsed is None:
                continue
            child, child_extras, child_spec, child_marker = parsed
            wanted = _EXTRA_MARKER.findall(child_marker or "")
            if wanted:
                if not set(wanted) & need.extras:
                    continue
                child_marker = None  # the extra was asked for; pip need not see it again
            queue.append((child, child_extras, child_spec, child_marker))

    lines: list[str] = []
    sources: dict[str, str] = {}
    for key in sorted(needs):
        need = needs[key]
        display = installed[key].metadata["Name"] if key in installed else need.name
        extras = f"[{','.join(sorted(need.extras))}]" if need.extras else ""
        if need.model_pin:
            version, source = need.model_pin, "model"
        elif key in captured:
            version, source = captured[key], "captured"
        elif key in installed:
            version, source = installed[key].version, "installed"
        elif None in need.markers:
            version, source = None, "unpinned"
        else:  # not installed here because its condition did not hold: pip judges it there
            version, source = None, "conditional"
        line = f"{display}{extras}" + (f"=={version}" if version else need.spec)
        conditions = sorted(m for m in need.markers if m is not None)
        if None not in need.markers and len(conditions) == 1:
            line += f"; {conditions[0]}"
        elif None not in need.markers:  # needed where any of its parents' conditions holds
            line += "; " + " or ".join(f"({m})" for m in conditions)
        lines.append(line)
        sources[display] = source
    return Pins(lines, sources, dropped)


def captured_requirements(ws: Workspace, run_id: str | None) -> dict[str, str] | None:
    """The run's captured ``name==version`` pins, or None when it has none (a model
    registered without a run, a run logged by the MLflow client, a purged run)."""
    if not run_id:
        return None
    with tempfile.TemporaryDirectory(prefix="loopline-capture-") as tmp:
        try:
            path = ws.tracking.download_artifacts(run_id, CAPTURED_REQUIREMENTS, tmp)
        except NotFound:
            return None
        return _read_pins(Path(path).read_text(encoding="utf-8", errors="replace")) or None
