"""Reproducibility capture: what a run needs to be re-run, collected without being asked.

Tags use MLflow's names where MLflow has one (``mlflow.source.git.commit``,
``mlflow.source.name``, ...), so MLflow's UI and clients read them too. Everything here is best
effort: a missing git binary or an odd platform loses that fact, never the run.
"""

from __future__ import annotations

import getpass
import importlib.metadata
import os
import platform
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Capture", "collect", "seed_everything"]

_GIT_TIMEOUT = 10


@dataclass
class Capture:
    tags: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    """Artifact path -> content (requirements, git diff)."""
    files: dict[str, Path] = field(default_factory=dict)
    """Artifact path -> local file to copy (entry-point script, notebook)."""


def _git(args: list[str], cwd: Path) -> str | None:
    if shutil.which("git") is None:
        return None
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def _entry_point() -> Path | None:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path and Path(path).is_file():
        return Path(path).resolve()
    return None


def _notebook() -> Path | None:
    """The running notebook's file, when the kernel tells us (VS Code and recent Jupyter set
    ``__vsc_ipynb_file__`` or ``JPY_SESSION_NAME``)."""
    main = sys.modules.get("__main__")
    for candidate in (
        getattr(main, "__vsc_ipynb_file__", None),
        os.environ.get("JPY_SESSION_NAME"),
    ):
        if candidate and str(candidate).endswith(".ipynb") and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


def _gpus() -> str:
    if shutil.which("nvidia-smi") is None:
        return "none"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    names = [line.strip() for line in out.splitlines() if line.strip()]
    return ", ".join(names) or "none"


def _name_and_version(dist: importlib.metadata.Distribution) -> tuple[str, str] | None:
    """Name and Version from the metadata's header lines: ``dist.metadata`` runs the e-mail
    parser over the whole file (long descriptions included), about 2 ms per distribution."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if not text:
        return None
    name = version = None
    for line in text.splitlines():
        if not line.strip():
            break  # the end of the headers
        key, _, value = line.partition(":")
        if key == "Name":
            name = value.strip()
        elif key == "Version":
            version = value.strip()
        if name and version:
            return name, version
    return None


_requirements_cache: tuple[tuple[tuple[str, int], ...], str] | None = None


def _search_path_stamp() -> tuple[tuple[str, int], ...]:
    """Each import directory with its mtime: installing or removing a distribution adds or
    removes a ``*.dist-info`` entry there, which changes the directory's mtime."""
    stamp = []
    for entry in sys.path:
        try:
            stamp.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            stamp.append((entry, -1))
    return tuple(stamp)


def requirements() -> str:
    """Installed distributions as pinned requirements, sorted, one per line.

    Remembered per process until an import directory changes, so a study's many runs (or a
    pipeline's) pay for the scan once."""
    global _requirements_cache
    stamp = _search_path_stamp()
    if _requirements_cache is not None and _requirements_cache[0] == stamp:
        return _requirements_cache[1]
    pins = set()
    for dist in importlib.metadata.distributions():
        found = _name_and_version(dist)
        if found:
            pins.add(f"{found[0]}=={found[1]}")
    text = "\n".join(sorted(pins, key=str.lower)) + "\n"
    _requirements_cache = (stamp, text)
    return text


def collect(cwd: Path | None = None) -> Capture:
    cwd = cwd or Path.cwd()
    cap = Capture()
    notebook = _notebook()
    entry = _entry_point()
    source = notebook or entry
    cap.tags["mlflow.source.name"] = str(source) if source else (sys.argv[0] or "<interactive>")
    cap.tags["mlflow.source.type"] = "NOTEBOOK" if notebook else "LOCAL"
    cap.tags["loopline.command"] = " ".join([sys.executable, *sys.argv])[:8000]
    try:
        cap.tags["mlflow.user"] = getpass.getuser()
    except (KeyError, OSError):
        pass
    cap.tags["loopline.python"] = platform.python_version()
    cap.tags["loopline.platform"] = platform.platform()
    cap.tags["loopline.cpu"] = f"{platform.machine()} x{os.cpu_count() or 1}"
    cap.tags["loopline.gpu"] = _gpus()

    repo_dir = source.parent if source else cwd
    commit = _git(["rev-parse", "HEAD"], repo_dir)
    if commit:
        cap.tags["mlflow.source.git.commit"] = commit.strip()
        branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], repo_dir)
        if branch:
            cap.tags["mlflow.source.git.branch"] = branch.strip()
        remote = _git(["config", "--get", "remote.origin.url"], repo_dir)
        if remote:
            cap.tags["mlflow.source.git.repoURL"] = remote.strip()
        status = _git(["status", "--porcelain", "--untracked-files=no"], repo_dir) or ""
        dirty = bool(status.strip())
        cap.tags["loopline.git.dirty"] = str(dirty).lower()
        if dirty:
            diff = _git(["diff", "HEAD"], repo_dir)
            if diff:
                cap.texts["loopline/git.diff"] = diff
    cap.texts["loopline/requirements.txt"] = requirements()
    if notebook:
        cap.files[f"loopline/{notebook.name}"] = notebook
    elif entry and entry.stat().st_size < 5_000_000:
        cap.files[f"loopline/{entry.name}"] = entry
    return cap


def seed_everything(seed: int) -> dict[str, Any]:
    """Seed Python's, NumPy's and (when imported) PyTorch's generators; returns what was seeded
    so callers can record it."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        from loopline.errors import InvalidInput

        raise InvalidInput(f"seed must be an integer, got {seed!r}")
    seeded: dict[str, Any] = {"seed": seed, "python": True}
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
        seeded["numpy"] = True
    except ImportError:
        seeded["numpy"] = False
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
        seeded["torch"] = True
    else:
        seeded["torch"] = False
    return seeded
