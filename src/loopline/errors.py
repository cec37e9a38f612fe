"""The one exception hierarchy of Loopline.

Every class carries its wire code (the MLflow-compatible ``error_code``), the HTTP status the
server answers with and the exit code the CLI ends with, so each adapter maps errors in one place
and by type, never by comparing strings. Builtins are never mapped: a ``KeyError`` escaping a
service is a bug (HTTP 500), not a "not found".
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ConfigError",
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "LooplineError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "StoreUnavailable",
    "Unauthenticated",
    "error_for_code",
]


class LooplineError(Exception):
    """Base of every error Loopline raises on purpose."""

    code = "INTERNAL_ERROR"
    http_status = 500
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(LooplineError, LookupError):
    """A named object (run, blob, dataset version, ...) does not exist."""

    code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404
    exit_code = 3


class AlreadyExists(LooplineError):
    """Creating something whose name or id is taken."""

    code = "RESOURCE_ALREADY_EXISTS"
    http_status = 400  # what MLflow sends, so its client reacts the same way
    exit_code = 4


class InvalidInput(LooplineError, ValueError):
    """The caller sent something malformed; the message names the field and the problem."""

    code = "INVALID_PARAMETER_VALUE"
    http_status = 400
    exit_code = 2


class ConfigError(InvalidInput):
    """A setting (flag, environment variable or ``loopline.toml`` key) is wrong or unusable."""

    code = "INVALID_CONFIGURATION"


class Conflict(LooplineError):
    """The request is valid but clashes with the current state (e.g. changing a logged param)."""

    code = "INVALID_STATE"
    http_status = 409
    exit_code = 5


class PermissionDenied(LooplineError, PermissionError):
    """The caller is known but may not do this, or the OS refused access to a path."""

    code = "PERMISSION_DENIED"
    http_status = 403
    exit_code = 6


class PayloadTooLarge(InvalidInput):
    """A request body or upload is over the server's configured size limit."""

    code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 413


class Unauthenticated(LooplineError):
    """No valid credentials were presented."""

    code = "UNAUTHENTICATED"
    http_status = 401
    exit_code = 6


class IntegrityError(LooplineError):
    """Stored bytes do not match their digest, or stored metadata contradicts itself."""

    code = "DATA_LOSS"
    http_status = 500
    exit_code = 7


class StoreUnavailable(LooplineError):
    """A backing service (database, object store) cannot be reached or opened."""

    code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503
    exit_code = 8


_BY_CODE: dict[str, type[LooplineError]] = {
    cls.code: cls
    for cls in (
        LooplineError,
        NotFound,
        AlreadyExists,
        InvalidInput,
        ConfigError,
        Conflict,
        PermissionDenied,
        PayloadTooLarge,
        Unauthenticated,
        IntegrityError,
        StoreUnavailable,
    )
}


def error_for_code(code: str) -> type[LooplineError]:
    """The class a wire ``error_code`` stands for; unknown codes map to the base class.

    An allow-list, on purpose: a remote payload never makes us import or build an arbitrary class.
    """
    return _BY_CODE.get(code, LooplineError)
