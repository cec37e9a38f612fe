"""Settings, resolved once: CLI flags > ``LOOPLINE_*`` environment > ``loopline.toml`` > defaults.

The result is an immutable :class:`Settings` plus where each value came from, built by the
composition root (``workspace.py``) and passed down. Nothing reads the environment at import
time, so tests build ``Settings(...)`` directly and never fight a global.
"""

from __future__ import annotations

import getpass
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator

from loopline.errors import ConfigError
from loopline.registry.policy import PromotionPolicy

__all__ = [
    "CONFIG_FILENAME",
    "ENV_PREFIX",
    "ResolvedSettings",
    "Settings",
    "absolutize",
    "find_config_file",
    "load_settings",
    "mask_uri",
    "strip_password",
]

CONFIG_FILENAME = "loopline.toml"
_JSON_SETTINGS = frozenset({"promotion_policies"})
"""Structured settings: a list of tables in loopline.toml, JSON in the environment."""
ENV_PREFIX = "LOOPLINE_"
STATE_DIRNAME = ".loopline"


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary container uid
        return "unknown"


class Settings(BaseModel):
    """Everything configurable about a workspace. Unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    home: Path
    """Workspace root: holds ``loopline.toml`` and the ``.loopline/`` state directory."""
    store_uri: str
    """Metadata database: ``sqlite:///path/to/loopline.db`` or ``postgresql://user@host/db``."""
    artifact_uri: str
    """Blob store root: a local directory (``file://`` optional) or ``s3://bucket/prefix``."""
    tracking_uri: str | None = None
    """Where the Python API and CLI send tracking calls: ``http(s)://host:port`` of a
    ``loopline server``; unset means in-process on store_uri."""
    tracking_token: SecretStr | None = None
    """API token sent as ``Authorization: Bearer`` to a server started with ``--auth``."""
    tracking_username: str | None = None
    """User name for HTTP Basic auth (when no token is set)."""
    tracking_password: SecretStr | None = None
    admin_password: SecretStr | None = None
    """Password of the ``admin`` user a server with ``--auth`` creates on first start; unset
    means a random one, printed once."""
    server_max_body_bytes: int = 16 * 1024 * 1024
    """Largest JSON request body the server accepts (artifact uploads are limited apart)."""
    server_max_artifact_bytes: int = 5 * 1024**3
    """Largest single artifact file the server accepts on upload."""
    server_max_page_size: int = 10_000
    """Most items one list or search request returns."""
    s3_endpoint_url: str | None = None
    """Endpoint of an S3-compatible store (MinIO, SeaweedFS, ...); unset means AWS."""
    s3_region: str | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    actor: str = _default_actor()
    """Name recorded on events this process writes."""
    promotion_policies: tuple[PromotionPolicy, ...] = ()
    """Which aliases need approval or checks before they move (``[[promotion_policies]]``
    tables in ``loopline.toml``; see :mod:`loopline.registry.policy`). Policies set through
    the API win over these for the same model and alias."""
    gc_grace_seconds: int = 3600
    """``loopline gc`` never deletes a blob younger than this: a writer may not have committed
    the row that references it yet."""

    @field_validator("store_uri", "artifact_uri")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("tracking_uri")
    @classmethod
    def _http_uri(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be the http:// or https:// address of a 'loopline server'")
        return value or None

    @field_validator(
        "gc_grace_seconds",
        "server_max_body_bytes",
        "server_max_artifact_bytes",
        "server_max_page_size",
    )
    @classmethod
    def _non_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be zero or positive")
        return value

    @property
    def state_dir(self) -> Path:
        return self.home / STATE_DIRNAME

    @classmethod
    def for_home(cls, home: str | os.PathLike[str], **overrides: Any) -> Settings:
        """Defaults for a workspace rooted at ``home``, with explicit overrides."""
        home_path = Path(home).resolve()
        values: dict[str, Any] = _defaults(home_path)
        values.update(overrides)
        return cls(**values)

    def display(self) -> dict[str, str]:
        """Values safe to print: secrets and passwords inside URIs are masked."""
        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                shown[name] = ""
            elif isinstance(value, SecretStr):
                shown[name] = "********"
            elif name.endswith("_uri") or name.endswith("_url"):
                shown[name] = mask_uri(str(value))
            else:
                shown[name] = str(value)
        return shown


@dataclass(frozen=True)
class ResolvedSettings:
    settings: Settings
    sources: dict[str, str]
    """Field name -> ``flag``, ``env LOOPLINE_X``, ``file <path>`` or ``default``."""
    config_file: Path | None


def _replace_password(uri: str, replacement: str | None) -> str:
    """``uri`` with the password in its user info replaced (``None``: removed)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    if replacement is not None:
        user = f"{user}:{replacement}"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def mask_uri(uri: str) -> str:
    """Hide the password of ``scheme://user:password@host`` so URIs can be logged and printed."""
    return _replace_password(uri, "***")


def find_config_file(start: Path) -> Path | None:
    """The nearest ``loopline.toml`` in ``start`` or any parent directory."""
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    return None


def _defaults(home: Path) -> dict[str, Any]:
    state = home / STATE_DIRNAME
    return {
        "home": home,
        "store_uri": f"sqlite:///{state / 'loopline.db'}",
        "artifact_uri": str(state / "artifacts"),
    }


def absolutize(name: str, value: Any, base: Path) -> Any:
    """Make relative local paths absolute against ``base`` (the config file's directory for file
    values, the current directory for flags and env), so a workspace works from any subdirectory.
    ``~`` is expanded."""
    if not isinstance(value, str):
        return value
    if name == "artifact_uri":
        if value.startswith("file://"):
            value = value[len("file://") :]
        if "://" not in value:
            path = Path(value).expanduser()
            return str(path if path.is_absolute() else (base / path).resolve())
    if name == "store_uri" and value.startswith("sqlite:///"):
        raw = value[len("sqlite:///") :]
        if raw and raw != ":memory:":
            path = Path(raw).expanduser()
            if not path.is_absolute():
                path = (base / path).resolve()
            return f"sqlite:///{path}"
    return value


def strip_password(uri: str) -> str:
    """``uri`` without the password in its user info (for writing config files)."""
    return _replace_password(uri, None)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    # A [loopline] table is accepted too, for files shared with other tools' settings; then
    # only that table is ours and the other tables are left alone.
    if isinstance(data.get("loopline"), dict):
        data = data["loopline"]
    known = set(Settings.model_fields) - {"home"}
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{path}: unknown setting {key!r}; valid settings are {', '.join(sorted(known))}"
            )
    return dict(data)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ResolvedSettings:
    """Resolve settings from every source, recording where each value came from.

    ``flags`` holds CLI options (``None`` values mean "not given"); ``env`` defaults to
    ``os.environ``. The workspace home is ``--home``, else ``LOOPLINE_HOME``, else the directory
    of the nearest ``loopline.toml`` above ``cwd``, else ``cwd`` itself.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if env is None else env
    cwd = (cwd or Path.cwd()).resolve()

    sources: dict[str, str] = {}
    config_file: Path | None
    if "home" in flags:
        home = (cwd / Path(flags["home"])).resolve()
        sources["home"] = "flag"
        config_file = home / CONFIG_FILENAME if (home / CONFIG_FILENAME).is_file() else None
    elif env.get(f"{ENV_PREFIX}HOME"):
        home = (cwd / Path(env[f"{ENV_PREFIX}HOME"])).resolve()
        sources["home"] = f"env {ENV_PREFIX}HOME"
        config_file = home / CONFIG_FILENAME if (home / CONFIG_FILENAME).is_file() else None
    else:
        config_file = find_config_file(cwd)
        home = config_file.parent if config_file else cwd
        sources["home"] = f"file {config_file}" if config_file else "default"

    values: dict[str, Any] = _defaults(home)
    for name in values:
        sources.setdefault(name, "default")

    if config_file is not None:
        for name, value in _read_config_file(config_file).items():
            values[name] = absolutize(name, value, config_file.parent)
            sources[name] = f"file {config_file}"

    for name in Settings.model_fields:
        if name == "home":
            continue
        raw = env.get(f"{ENV_PREFIX}{name.upper()}")
        if raw is not None and raw != "":
            if name in _JSON_SETTINGS:
                try:
                    values[name] = json.loads(raw)
                except ValueError as exc:
                    raise ConfigError(
                        f"{ENV_PREFIX}{name.upper()} must be JSON (a list of tables): {exc}"
                    ) from None
            else:
                values[name] = absolutize(name, raw, cwd)
            sources[name] = f"env {ENV_PREFIX}{name.upper()}"

    for name, value in flags.items():
        if name == "home":
            continue
        if name not in Settings.model_fields:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = absolutize(name, value, cwd)
        sources[name] = "flag"

    try:
        settings = Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        source = sources.get(str(first["loc"][0]) if first["loc"] else field, "default")
        raise ConfigError(f"setting {field!r} (from {source}) is invalid: {first['msg']}") from exc
    return ResolvedSettings(settings=settings, sources=sources, config_file=config_file)
