"""Streaming request bodies into blocking service code, and blob reads out as responses."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from typing import BinaryIO

import anyio.from_thread
from starlette.requests import Request

from loopline.errors import PayloadTooLarge

__all__ = ["DRAIN_BYTES", "RequestBodyReader", "drain", "iter_file"]

CHUNK = 1024 * 1024
DRAIN_BYTES = 16 * 1024 * 1024


class RequestBodyReader(io.RawIOBase):
    """A blocking file over an ASGI request body, for code running in the server's worker
    threads: each read pulls the next chunk from the event loop. Nothing is buffered beyond one
    chunk, and reading past ``limit`` bytes raises :class:`PayloadTooLarge` (the blob store then
    discards what it staged)."""

    def __init__(self, request: Request, limit: int) -> None:
        super().__init__()
        self._stream: AsyncIterator[bytes] = request.stream()
        self._buffer = b""
        self._done = False
        self._limit = limit
        self.received = 0

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bytes:
        try:
            return anyio.from_thread.run(self._stream.__anext__)
        except StopAsyncIteration:
            return b""

    def _drain(self) -> None:
        """Read and drop up to :data:`DRAIN_BYTES` more, so the client sees our 413 instead of
        a connection reset (closing a socket with unread data resets it)."""
        dropped = 0
        while dropped < DRAIN_BYTES and (chunk := self._next_chunk()):
            dropped += len(chunk)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer and not self._done:
            chunk = self._next_chunk()
            if not chunk:
                self._done = True
                break
            self.received += len(chunk)
            if self.received > self._limit:
                self._drain()
                raise PayloadTooLarge(
                    f"upload is over the limit of {self._limit} bytes (server_max_artifact_bytes)"
                )
            self._buffer = chunk
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


async def drain(request: Request, limit: int = DRAIN_BYTES) -> None:
    """Read and drop a rejected request's body (up to ``limit``), for a clean 413."""
    dropped = 0
    async for chunk in request.stream():
        dropped += len(chunk)
        if dropped >= limit:
            return


def iter_file(handle: BinaryIO, chunk: int = CHUNK) -> Iterator[bytes]:
    """Chunks of an open blob (verified as it is read), closing it at the end."""
    try:
        while True:
            data = handle.read(chunk)
            if not data:
                return
            yield data
    finally:
        handle.close()
