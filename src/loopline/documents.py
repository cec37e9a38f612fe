"""What every generated document shares: model cards, validation reports and datasheets.

Each of them collects facts into a dataclass, renders it through Jinja2 as Markdown and/or one
self-contained HTML page, takes a small user-written YAML file for what only people know, and
is written to disk atomically. Those three mechanics live here once:

- :func:`environment`: a cached Jinja2 environment per template package and output kind, with
  the filters every template uses (``when``, ``number``, ``percent``, ``size``, ``cell``) and the
  ``link`` test;
- :func:`parse_user_yaml` / :func:`parse_user_yaml_text`: the strict reader of the YAML;
- :func:`atomic_write`: temp file beside the target, then rename.

What a document says stays in its own module (``models/card.py``, ``data/reports.py``,
``data/datasheet.py``) and its templates.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "EXTRA_FIELD",
    "UserYaml",
    "atomic_write",
    "environment",
    "is_link",
    "md_cell",
    "number",
    "parse_user_yaml",
    "parse_user_yaml_text",
    "percent",
    "render",
    "size",
    "user_sections",
    "when",
]

EXTRA_FIELD = "extra"
"""The one key every user YAML has besides its own fields: free-form names mapped to values."""

UserYaml = str | os.PathLike[str] | Mapping[str, Any] | None
"""Where a document's user-written part comes from: a YAML file's path, an already-parsed
mapping, or None for none."""

Filter = Callable[..., Any]


# -- filters -----------------------------------------------------------------------------------
def when(ms: int | None) -> str:
    """A timestamp in ms as UTC text; 0 or None (never recorded) as empty."""
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: Any) -> str:
    """Counts (ints) with thousands separators; measurements (floats) to six significant digits,
    enough to compare versions and short enough to read, with whole floats printed as integers
    (``0.91``, ``3``, ``1.23457e+06``). None is empty; anything else is printed as it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def percent(value: float | None) -> str:
    """A fraction as a percentage with two decimals; None (not computed) as empty."""
    return "" if value is None else f"{value:.2%}"


def size(n: int | None) -> str:
    """A byte count in decimal units, as ``loopline data`` prints it (``512 B``, ``1.5 KB``)."""
    if n is None:
        return ""
    value = float(n)
    if value < 1000:
        return f"{n} B"
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if round(value, 1) < 1000:  # 999,950 bytes is 1.0 MB, not 1000.0 KB
            return f"{value:.1f} {unit}"
    value /= 1000
    return f"{value:.1f} TB"


def md_cell(value: Any) -> str:
    """A Markdown table cell: a ``|`` would end the cell and a newline the row, so runs of
    whitespace become one space and pipes are escaped."""
    text = " ".join(str(value).split()) if value is not None else ""
    return text.replace("|", "\\|")


def is_link(text: Any) -> bool:
    """Only web links become ``<a href>``: a ``javascript:`` reference must stay text."""
    return isinstance(text, str) and text.startswith(("https://", "http://"))


COMMON_FILTERS: Mapping[str, Filter] = {
    "when": when,
    "number": number,
    "percent": percent,
    "size": size,
    "cell": md_cell,
}


@functools.cache
def environment(
    package: str, *, html: bool, filters: tuple[tuple[str, Filter], ...] = ()
) -> jinja2.Environment:
    """The Jinja2 environment for the templates in ``<package>/templates``, built once per
    arguments (parsing and compiling templates is the slow part of rendering).

    ``html`` turns autoescaping on: every value a HTML template prints is escaped, since user
    YAML, descriptions, column names and sample rows are all whatever someone typed. Markdown
    stays verbatim (user prose may itself be Markdown); its table cells go through ``cell``.
    Undefined names fail instead of printing nothing, so a template typo cannot silently drop
    a section. ``filters`` adds a document's own filters, as ``(name, function)`` pairs so the
    arguments stay hashable; one with a common filter's name replaces it for that document."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(COMMON_FILTERS)
    env.filters.update(dict(filters))
    env.tests["link"] = is_link
    return env


def user_sections(
    user: Any, titles: Mapping[str, str], always: tuple[str, ...]
) -> list[tuple[str, Any]]:
    """``(title, text)`` for the user-written prose a document shows, in order: those in
    ``always`` even when empty (a reader should see that nobody wrote them), the others only
    when filled."""
    return [
        (title, getattr(user, key))
        for key, title in titles.items()
        if key in always or getattr(user, key)
    ]


def render(package: str, template: str, *, html: bool, **context: Any) -> str:
    """One template of ``package`` rendered with ``context`` and Loopline's version."""
    from loopline._version import __version__

    return (
        environment(package, html=html)
        .get_template(template)
        .render(loopline_version=__version__, **context)
    )


# -- the user-written YAML ---------------------------------------------------------------------
def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class _Reader:
    """Checks one document's YAML; ``what`` (``model card``, ``datasheet``) starts every
    message so the user knows which file is meant."""

    def __init__(
        self,
        what: str,
        text_fields: Iterable[str],
        list_fields: Iterable[str],
        renamed: Mapping[str, str] | None,
    ) -> None:
        self.what = what
        self.text_fields = tuple(text_fields)
        self.list_fields = tuple(list_fields)
        self.fields = (*self.text_fields, *self.list_fields, EXTRA_FIELD)
        self.renamed = dict(renamed or {})

    def text(self, value: Any, where: str) -> str | list[str]:
        if value is None:
            return ""
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [v.strip() for v in value if v.strip()]
        raise InvalidInput(
            f"{self.what} field {where!r} must be a string or a list of strings, "
            f"got {_type_name(value)}"
        )

    def strings(self, value: Any, where: str) -> list[str]:
        text = self.text(value, where)
        return ([text] if text else []) if isinstance(text, str) else text

    def scalar(self, value: Any, where: str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float | dt.date):
            return str(value)
        raise InvalidInput(
            f"{self.what} field {where!r} must be a string, number, boolean or a list of them, "
            f"got {_type_name(value)}"
        )

    def extra(self, value: Any) -> dict[str, str | list[str]]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise InvalidInput(
                f"{self.what} field {EXTRA_FIELD!r} must be a mapping, got {_type_name(value)}"
            )
        out: dict[str, str | list[str]] = {}
        for key, item in value.items():
            where = f"{EXTRA_FIELD}.{key}"
            if isinstance(item, list):
                out[str(key)] = [self.scalar(v, where) for v in item]
            elif item is not None:
                out[str(key)] = self.scalar(item, where)
        return out

    def sections(self, doc: Any, origin: str) -> dict[str, Any]:
        what = f"{self.what} {origin}" if origin else self.what
        if not isinstance(doc, Mapping):
            raise InvalidInput(f"{what} must be a mapping of fields, got {_type_name(doc)}")
        for key in doc:
            if key in self.fields:
                continue
            hint = ""
            if key in self.renamed:
                hint = f"; write {self.renamed[key]!r}, the only spelling accepted"
            raise InvalidInput(
                f"{what}: unknown field {key!r}{hint}; the fields are "
                f"{', '.join(self.fields)} (put your own under {EXTRA_FIELD!r})"
            )
        return {
            **{name: self.text(doc.get(name), name) for name in self.text_fields},
            **{name: self.strings(doc.get(name), name) for name in self.list_fields},
            EXTRA_FIELD: self.extra(doc.get(EXTRA_FIELD)),
            "origin": origin,
        }

    def from_text(self, text: str, origin: str) -> dict[str, Any]:
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{self.what} {origin} is not valid YAML: {exc}") from exc
        return self.sections({} if doc is None else doc, origin)


def parse_user_yaml(
    source: UserYaml,
    *,
    what: str,
    text_fields: Iterable[str],
    list_fields: Iterable[str] = (),
    renamed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Read and check a document's user-written YAML: a file's path, a parsed mapping, or None
    (no YAML: every field empty).

    Strict, because a misspelt ``limitation:`` silently dropped would publish a document
    claiming there are none. An unknown top-level key is InvalidInput naming it and listing the
    valid ones (``renamed`` maps a known wrong spelling to the right one, said in the message);
    a wrongly typed field is InvalidInput naming it (``extra.<key>`` inside ``extra``); a
    missing file is NotFound; YAML that does not parse is InvalidInput.

    Returns every field: text fields as a string (a paragraph) or a list of strings (bullets),
    empty when absent; list fields as a list of strings (a single string is a list of one);
    ``extra`` as a mapping of name to a string or list of strings; and ``origin``, the path
    the YAML was read from (empty for a mapping or None)."""
    reader = _Reader(what, text_fields, list_fields, renamed)
    if source is None:
        return reader.sections({}, "")
    if isinstance(source, Mapping):
        return reader.sections(source, "")
    path = Path(source)
    if not path.is_file():
        raise NotFound(f"{what} file {str(path)!r} not found")
    return reader.from_text(path.read_text(encoding="utf-8"), str(path))


def parse_user_yaml_text(
    text: str,
    *,
    origin: str,
    what: str,
    text_fields: Iterable[str],
    list_fields: Iterable[str] = (),
    renamed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """:func:`parse_user_yaml` for YAML already read from somewhere other than a local file (a
    ``card.yaml`` in a model directory, a ``datasheet.yaml`` in a dataset version); ``origin``
    says where, in messages and in the result."""
    return _Reader(what, text_fields, list_fields, renamed).from_text(text, origin)


# -- writing -----------------------------------------------------------------------------------
def atomic_write(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temp file beside it and a rename, so a
    failed render or a crash never leaves half a document behind a name a web server or a
    reviewer already reads. Missing parent directories are created. Returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 -- closed below, renamed or removed
        "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
    )
    try:
        with tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        # mkstemp creates 0600; give the document the mode a plain open() would. The umask
        # can only be read by setting it, so it is put back at once.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp.name, 0o666 & ~umask)
        os.replace(tmp.name, target)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise
    return target
