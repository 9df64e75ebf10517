"""The GCS driver's object reader.

The range is fetched in windows of the chunk size, each one ranged
GET pinned to the generation the reader opened, so the bytes all come from
one object version; the next window is fetched while the current one is
being sent. If that generation is replaced or deleted mid-read, the read
fails with OBJECT_NOT_FOUND rather than mixing versions.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

from gateway.backends.base import RangeReader
from gateway.backends.gcs.common import (
    GCS_ERRORS,
    KIND,
    GcsContext,
    is_not_found,
)
from gateway.domain.errors import backend_unavailable, changed_while_read
from gateway.domain.objects import ObjectMeta


class GcsReader(RangeReader):
    """A range of one generation of an object, fetched window by window."""

    def __init__(self, ctx: GcsContext, meta: ObjectMeta, start: int, end: int) -> None:
        super().__init__(meta, start, end)
        self._ctx = ctx
        self._blob = ctx.blob(meta.key, generation=meta.generation)
        self._pending: asyncio.Future[bytes] | None = None
        self._closed = False

    def _fetch(self, first: int, end: int) -> asyncio.Future[bytes]:
        return self._ctx.submit(functools.partial(self._download, first, end))

    def _download(self, first: int, end: int) -> bytes:
        data: bytes = self._blob.download_as_bytes(
            start=first,
            end=end - 1,  # inclusive
            raw_download=True,  # the stored bytes, even if gzip-encoded
            checksum=None,  # a range has no checksum to check
            retry=self._ctx.retry,
        )
        return data

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        window = max(self._ctx.chunk_size, chunk_size)
        position = self._start
        if position >= self._end:
            return
        self._pending = self._fetch(position, min(self._end, position + window))
        while self._pending is not None:
            pending, self._pending = self._pending, None
            data = await self._window(pending)
            expected = min(self._end, position + window) - position
            if len(data) != expected:
                raise backend_unavailable(
                    backend=KIND,
                    detail=f"GCS download of {self._meta.key!r} returned {len(data)} bytes "
                    f"instead of {expected}",
                )
            position += len(data)
            if position < self._end and not self._closed:
                # Fetch the next window while this one is being sent.
                self._pending = self._fetch(position, min(self._end, position + window))
            view = memoryview(data)
            for offset in range(0, len(view), chunk_size):
                if self._closed:
                    return
                yield bytes(view[offset : offset + chunk_size])
        await self.close()

    async def _window(self, pending: asyncio.Future[bytes]) -> bytes:
        key = self._meta.key
        try:
            return await pending
        except GCS_ERRORS as error:
            if is_not_found(error):
                raise changed_while_read(key=key) from error
            with self._ctx.errors(key, op="objects.get (media)"):
                raise

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pending, self._pending = self._pending, None
        if pending is not None:
            # The thread finishes its window regardless; only its result is dropped.
            pending.add_done_callback(_ignore_result)


def _ignore_result(future: asyncio.Future[bytes]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not warn about it
