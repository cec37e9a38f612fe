"""``@ll.step`` and ``@ll.pipeline``: steps and pipelines in plain Python.

Calling a step while a pipeline is being built records a node and returns placeholder
:class:`StepOutput` objects instead of running anything; passing a placeholder to another step
draws an edge. Calling a step anywhere else (a test, a notebook, a worker process) just calls
the function, so steps stay ordinary, unit-testable functions.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import threading
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from loopline.errors import InvalidInput

__all__ = ["Pipeline", "Resources", "Step", "StepOutput", "pipeline", "step"]

_local = threading.local()


@dataclass(frozen=True)
class Resources:
    """What a step asks of the machine. The local executor counts ``cpus`` against its worker
    slots and ignores ``memory``; the Ray executor passes both to ``ray.remote``."""

    cpus: float = 1.0
    memory: int | None = None
    """Bytes."""


@dataclass(frozen=True)
class StepOutput:
    """A placeholder for one output of a step that has not run yet (pipeline build time)."""

    node: str
    name: str

    def __repr__(self) -> str:
        return f"<output {self.name!r} of step {self.node!r}>"

    def __bool__(self) -> bool:  # an `if` on a placeholder is a build-time bug, say so
        raise InvalidInput(
            f"{self!r} has no value while the pipeline is being built; branch inside a step"
        )

    def __iter__(self) -> Any:
        raise InvalidInput(
            f"{self!r} is one output; annotate the step's return as tuple[A, B] (or pass "
            "outputs=[...]) to unpack several"
        )


def _count_outputs(fn: Callable[..., Any]) -> int:
    """How many outputs a return annotation ``tuple[A, B]`` declares; 1 otherwise (a bare
    ``tuple`` or ``tuple[int, ...]`` is one value)."""
    try:
        annotation = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable names under `from __future__ import annotations`
        raw = getattr(fn, "__annotations__", {}).get("return")
        if isinstance(raw, str):
            m = re.fullmatch(r"\s*(?:typing\.)?[Tt]uple\[(.*)\]\s*", raw)
            if m and "..." not in m[1]:
                return _top_level_commas(m[1]) + 1
        annotation = raw
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if args and Ellipsis not in args and args != ((),):
            return len(args)
    return 1


def _top_level_commas(text: str) -> int:
    depth = count = 0
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        count += ch == "," and depth == 0
    return count


class Step:
    """A function made a pipeline step; see :func:`step`. Pickles by reference when its module
    attribute is this object, so workers import it rather than receive its code."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        cache: bool = True,
        retries: int = 0,
        backoff: float = 0.5,
        timeout: float | None = None,
        resources: Resources | None = None,
        outputs: Sequence[str] | None = None,
    ) -> None:
        if retries < 0:
            raise InvalidInput(f"retries must be >= 0, got {retries}")
        if timeout is not None and timeout <= 0:
            raise InvalidInput(f"timeout must be positive seconds, got {timeout}")
        self.fn = fn
        self.name = name or fn.__name__
        self.cache = cache
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.resources = resources or Resources()
        count = _count_outputs(fn) if outputs is None else len(outputs)
        if outputs is not None:
            self.outputs = list(outputs)
        elif count == 1:
            self.outputs = ["output"]
        else:
            self.outputs = [f"output_{i}" for i in range(count)]
        self.tuple_output = count > 1
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = getattr(_local, "builder", None)
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<step {self.name!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        module, qualname = self.fn.__module__, self.fn.__qualname__
        if module != "__main__" and "<locals>" not in qualname:
            try:
                found: Any = importlib.import_module(module)
                for part in qualname.split("."):
                    found = getattr(found, part)
                if found is self:
                    return (_import_step, (module, qualname))
            except Exception:
                pass
        return (_rebuild_step, (self.fn, self._options()))

    def _options(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cache": self.cache,
            "retries": self.retries,
            "backoff": self.backoff,
            "timeout": self.timeout,
            "resources": self.resources,
            "outputs": self.outputs if self.tuple_output else None,
        }


def _import_step(module: str, qualname: str) -> Any:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def _rebuild_step(fn: Callable[..., Any], options: dict[str, Any]) -> Step:
    return Step(fn, **options)


@overload
def step(fn: Callable[..., Any], /) -> Step: ...
@overload
def step(
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    backoff: float = 0.5,
    timeout: float | None = None,
    cpus: float = 1.0,
    memory: int | None = None,
    outputs: Sequence[str] | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...
def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    backoff: float = 0.5,
    timeout: float | None = None,
    cpus: float = 1.0,
    memory: int | None = None,
    outputs: Sequence[str] | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make ``fn`` a pipeline step.

    ``cache=False`` always runs it; ``retries`` re-runs a failing attempt after ``backoff``
    seconds (doubling each time); ``timeout`` (seconds) stops an attempt by killing its worker;
    ``cpus``/``memory`` are a resources hint for the executor. A return annotation
    ``tuple[A, B]`` (or ``outputs=["train", "test"]``) declares several outputs.
    """

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(
            f,
            name=name,
            cache=cache,
            retries=retries,
            backoff=backoff,
            timeout=timeout,
            resources=Resources(cpus, memory),
            outputs=outputs,
        )

    return wrap(fn) if fn is not None else wrap


@dataclass
class Pipeline:
    """A function made a pipeline; see :func:`pipeline`. Calling it runs it locally and returns
    the :class:`~loopline.pipelines.runner.PipelineRun`; inside another pipeline being built it
    inlines its steps."""

    fn: Callable[..., Any]
    name: str
    signature: inspect.Signature = field(init=False)

    def __post_init__(self) -> None:
        self.signature = inspect.signature(self.fn)
        functools.update_wrapper(self, self.fn)  # type: ignore[arg-type]

    @property
    def qualified_name(self) -> str:
        """``module:qualname``: what ``loopline pipeline run`` and ``resume`` import."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def __call__(self, **params: Any) -> Any:
        if getattr(_local, "builder", None) is not None:
            return self.fn(**params)
        from loopline.pipelines.runner import run

        return run(self, params)

    def __hash__(self) -> int:
        return id(self)


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...
@overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...
def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make ``fn`` a pipeline: its body calls steps, which builds the DAG; its keyword
    parameters are the pipeline's parameters (``--param k=v`` on the command line)."""

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name or f.__name__)

    return wrap(fn) if fn is not None else wrap


def set_builder(builder: Any) -> Any:
    """Install ``builder`` as this thread's build target; returns the previous one."""
    previous = getattr(_local, "builder", None)
    _local.builder = builder
    return previous
