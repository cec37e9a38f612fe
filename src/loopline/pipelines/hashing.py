"""What a step's cache key is made of: its code, its parameters and its inputs' digests.

The code hash covers the step function's source and, recursively, the source of every function
and class it references by global name (``helper(x)``, ``utils.helper(x)``) that is defined in
the project, meaning in a module whose file lies outside the standard library and
site-packages (and outside Loopline itself). Edit a helper and the steps that call it re-run;
upgrade pandas and nothing does (pin your environment for that).
"""

from __future__ import annotations

import inspect
import json
import marshal
import math
import os
import sys
import sysconfig
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import blake3

__all__ = ["CodeHash", "cache_key", "canonical_json", "code_hash", "value_digest"]

OUTPUT_FORMAT_VERSION = "1"
"""Bumped when :mod:`loopline.pipelines.outputs` changes how a value is written, so cached
outputs in an older format are not reused."""


@cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {p for p in sys.path if p.rstrip(os.sep).endswith(("site-packages", "dist-packages"))}
    roots.add(str(Path(__file__).resolve().parent.parent))  # loopline itself
    return tuple(os.path.realpath(r) + os.sep for r in roots)


def _module_file(module_name: str) -> str | None:
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module is None or (module_name == "__main__" and file is None):
        return "<dynamic>"  # a notebook, REPL or exec'd namespace: its code is the project
    return os.path.realpath(file) if file else None


def in_project(module_name: str | None) -> bool:
    """True for modules whose code belongs to the user's project (and ``__main__``)."""
    if not module_name:
        return False
    file = _module_file(module_name)
    if file is None:
        return False  # builtin or frozen
    return file == "<dynamic>" or not file.startswith(_library_roots())


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        if code is not None:  # no source file (exec'd code): the bytecode stands in
            return marshal.dumps(code).hex()
        return repr(obj)


def _global_names(code: types.CodeType) -> Iterable[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


@dataclass(frozen=True)
class CodeHash:
    digest: str
    modules: tuple[str, ...]
    """Project modules the hash read, so workers can reload those that changed on disk."""


def code_hash(fn: Callable[..., Any]) -> CodeHash:
    """The step's code identity (see the module docstring). Objects are visited once, so
    mutual recursion terminates; the walk is memoised per function object by the caller."""
    seen: set[int] = set()
    parts: list[str] = []
    modules: list[str] = []

    def visit(obj: Any) -> None:
        obj = getattr(obj, "fn", obj)  # a Step: hash the function it wraps
        if id(obj) in seen:
            return
        seen.add(id(obj))
        module = getattr(obj, "__module__", None)
        if isinstance(obj, types.FunctionType | type) and in_project(module):
            parts.append(f"{module}:{getattr(obj, '__qualname__', '')}\n{_source(obj)}")
            if module not in modules:
                modules.append(module)  # type: ignore[arg-type]
            if isinstance(obj, types.FunctionType):
                visit_globals(obj.__code__, obj.__globals__)
                for cell in obj.__closure__ or ():
                    try:
                        visit(cell.cell_contents)
                    except ValueError:  # an empty cell
                        pass
            else:
                for member in vars(obj).values():
                    func = getattr(member, "__func__", member)
                    if isinstance(func, types.FunctionType):
                        visit_globals(func.__code__, func.__globals__)

    def visit_globals(code: types.CodeType, namespace: dict[str, Any]) -> None:
        names = list(dict.fromkeys(_global_names(code)))
        for name in names:
            value = namespace.get(name)
            if isinstance(value, types.ModuleType):
                if in_project(value.__name__):  # `helpers.f(...)`: f is among co_names too
                    for attr in names:
                        visit(getattr(value, attr, None))
            elif value is not None:
                visit(value)

    visit(fn)
    return CodeHash(blake3.blake3("\0".join(parts).encode()).hexdigest(), tuple(modules))


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    return {"__digest__": value_digest(value)}


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-JSON values replaced by their content digest: the same
    value always gives the same text."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"))


def value_digest(value: Any) -> str:
    """A content digest for a non-JSON parameter value (a DataFrame passed as a constant):
    the digest the output serializer would give it."""
    from loopline.pipelines.outputs import digest_of_value

    return digest_of_value(value)


def cache_key(code: str, params: str, inputs: dict[str, str], extra: str = "") -> str:
    """The step's cache key: code hash, canonical params and input digests, plus the output
    format version."""
    text = "\n".join(
        [OUTPUT_FORMAT_VERSION, code, params, json.dumps(inputs, sort_keys=True), extra]
    )
    return blake3.blake3(text.encode()).hexdigest()
