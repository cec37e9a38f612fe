"""The HTTP transport of the remote client: auth headers, retries, idempotency, error mapping.

Every request that changes state carries an ``Idempotency-Key``; a retry re-sends the same key,
so the server answers a repeated create with the first answer instead of creating twice.
Connection errors, 429 and 5xx are retried with exponential backoff and jitter; any other error
is mapped back to the Loopline exception the server raised (by its wire ``error_code``).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import blake3
import httpx
import orjson

from loopline import __version__
from loopline.config import Settings
from loopline.errors import IntegrityError, StoreUnavailable, error_for_code

__all__ = ["HttpTransport"]

_RETRY_STATUS = frozenset({429, 502, 503, 504, 500})
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class HttpTransport:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        retries: int = 5,
        backoff: float = 0.2,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"user-agent": f"loopline/{__version__}"}
        auth: httpx.Auth | None = None
        if token:
            headers["authorization"] = f"Bearer {token}"
        elif username:
            auth = httpx.BasicAuth(username, password or "")
        self.retries = retries
        self.backoff = backoff
        self.client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpTransport:
        token = settings.tracking_token.get_secret_value() if settings.tracking_token else None
        password = (
            settings.tracking_password.get_secret_value() if settings.tracking_password else None
        )
        return cls(
            settings.tracking_uri or "",
            token=token,
            username=settings.tracking_username,
            password=password,
        )

    def close(self) -> None:
        self.client.close()

    # -- requests --------------------------------------------------------------------------------
    def _raise_for(self, response: httpx.Response) -> None:
        try:
            body = response.json()
            code, message = body.get("error_code", ""), body.get("message", response.text)
        except (ValueError, AttributeError):
            code, message = "", response.text[:500] or response.reason_phrase
        if response.status_code == 401:
            code = code or "UNAUTHENTICATED"
        raise error_for_code(code)(f"{message} (server said {response.status_code})")

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if method in _MUTATING:
            headers.setdefault("idempotency-key", uuid.uuid4().hex)
        rewind = kwargs.pop("rewind", None)
        content_factory = kwargs.pop("content_factory", None)
        for attempt in range(self.retries + 1):
            if content_factory is not None:
                kwargs["content"] = content_factory()
            try:
                response = self.client.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise StoreUnavailable(
                        f"cannot reach the tracking server at {self.base_url}: {exc}; check "
                        "that 'loopline server' runs there (LOOPLINE_TRACKING_URI)"
                    ) from exc
            else:
                if response.status_code not in _RETRY_STATUS or attempt == self.retries:
                    return response
                response.close()
            if rewind is not None:
                rewind()
            time.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """One JSON request; returns the decoded JSON answer or raises the mapped error."""
        content = (
            orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY) if body is not None else None
        )
        headers = {"content-type": "application/json"} if content is not None else None
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        response = self._send(method, path, content=content, params=clean, headers=headers)
        if response.status_code >= 400:
            self._raise_for(response)
        return orjson.loads(response.content) if response.content else None

    def upload(self, path: str, stream: BinaryIO) -> Any:
        """PUT a file body streamed in chunks; a retry rewinds the file first."""
        start = stream.tell() if stream.seekable() else None

        def rewind() -> None:
            if start is None:
                raise StoreUnavailable("upload failed and the source cannot be rewound to retry")
            stream.seek(start)

        def chunks() -> Iterator[bytes]:
            while chunk := stream.read(1024 * 1024):
                yield chunk

        response = self._send(
            "PUT",
            path,
            content_factory=chunks,
            headers={"content-type": "application/octet-stream"},
            rewind=rewind,
        )
        if response.status_code >= 400:
            self._raise_for(response)
        return response.json()

    @contextmanager
    def download(self, path: str) -> Iterator[httpx.Response]:
        """A streamed GET; the caller iterates ``response.iter_bytes()``."""
        with self.client.stream("GET", path) as response:
            if response.status_code >= 400:
                response.read()
                self._raise_for(response)
            yield response

    def download_to(self, path: str, target: Path, digest: str) -> None:
        """Stream ``path`` into ``target``, checking the bytes against their BLAKE3
        ``digest`` on the way: a mismatch (bytes altered in storage or in transit) raises
        IntegrityError and leaves no file; a partial download never has the final name."""
        partial = target.with_name(target.name + ".partial")
        hasher = blake3.blake3(max_threads=1)
        try:
            with self.download(path) as response, partial.open("wb") as out:
                for chunk in response.iter_bytes(1024 * 1024):
                    hasher.update(chunk)
                    out.write(chunk)
            actual = hasher.hexdigest()
            if actual != digest:
                raise IntegrityError(
                    f"{path} arrived with digest {actual}, not the recorded {digest}: the stored "
                    "file was altered; refusing it"
                )
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
