"""A read of a key whose layout is not remembered (a cold read: after a
restart, on another replica, or once the object was replaced).

Its first request is the driver's read of the range asked for, as in a bucket
without compression, so that an object stored as it is costs that one request
and keeps the driver's fast paths. When the reader's metadata says the object
is compressed, what that read holds is used rather than dropped:

- a read ending at the object's end and no longer than HELD_LIMIT (a small
  object read whole, a suffix) is read into memory: it holds the tail, and
  often the frames too, so nothing more is asked of the store;
- a read covering the frames the range needs (a whole object, a range from
  its start) is kept open and serves them after the tail is read (pinned to
  the etag of the first read): two requests;
- otherwise, an object no longer than HELD_LIMIT is read whole in a second
  request pinned to that etag, a longer one needs its tail read and then its
  frames (three).

Every later read of the object's bytes is pinned to the etag of the first, so
the layout and the frames always come from the one stored object, whose
metadata judged the caller's conditions."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence

from gateway.backends.base import Backend, ObjectReader, RangeReader
from gateway.domain import ranges
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, ObjectMeta
from gateway.layers.compression import seekable
from gateway.layers.compression.layouts import (
    STORED_CHUNK,
    TAIL_PROBE,
    Layouts,
    as_original,
    damaged,
    is_compressed,
    open_stored,
    read_stored,
)
from gateway.layers.compression.reader import CompressedReader
from gateway.layers.compression.seekable import DamagedObject, Frame, Layout

# The largest stored read held in memory whole, rather than asking the store
# for its tail and frames apart: a request costs more than reading this much.
HELD_LIMIT = 1024 * 1024
# The most of the first read skipped to reach the frames it covers, and the
# most of it read past them to its end (so that S3 keeps the connection,
# which a body closed unread costs).
SKIP_LIMIT = 256 * 1024
DRAIN_LIMIT = 64 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class Held:
    """The stored bytes [start, start + len(data)) of an object, in memory."""

    start: int
    data: bytes

    def holds(self, first: int, end: int) -> bool:
        return self.start <= first and end <= self.start + len(self.data)


async def open_cold(
    backend: Backend,
    layouts: Layouts,
    key: str,
    offset: int,
    limit: int | None,
    conditions: Conditions,
) -> ObjectReader:
    """The range offset/limit of the object at key, as callers see it."""
    retried = False
    while True:
        first = await _first_read(backend, key, offset, limit, conditions)
        if not is_compressed(first.meta):
            return first
        try:
            return await _compressed(backend, layouts, key, offset, limit, first)
        except GatewayError as error:
            if retried or error.reason not in _REPLACED:
                raise
        # Replaced (or deleted) between the first read and a later one: the
        # object there now is read afresh, the caller's conditions judged on it.
        retried = True


# What a read pinned to the first read's etag meets once the object it saw
# was replaced (or deleted).
_REPLACED = (Reason.PRECONDITION_FAILED, Reason.OBJECT_NOT_FOUND)


async def _first_read(
    backend: Backend, key: str, offset: int, limit: int | None, conditions: Conditions
) -> ObjectReader:
    """The driver's read of the range asked for; past the stored size, of
    the object's end instead when the object is compressed."""
    try:
        return await backend.open_read(key, offset, limit, conditions)
    except GatewayError as error:
        if error.reason is not Reason.INVALID_RANGE:
            raise
        # Past the stored size, but maybe not past the original's: the
        # object's end tells, with its metadata (the caller's conditions
        # judged on it); a compressed object no longer than HELD_LIMIT whole.
        first = await backend.open_read(key, -HELD_LIMIT, None, conditions)
        if not is_compressed(first.meta):
            await first.close()
            raise
        return first


async def _compressed(
    backend: Backend,
    layouts: Layouts,
    key: str,
    offset: int,
    limit: int | None,
    first: ObjectReader,
) -> ObjectReader:
    """The range of the compressed object first (the first read) found."""
    stored = dataclasses.replace(first.meta, key=key)
    reader: ObjectReader | None = first
    try:
        held = None
        if _worth_holding(first, stored.size):
            reader = None
            held = Held(first.start, await _read_all(first))
        elif first.start > SKIP_LIMIT or stored.size <= HELD_LIMIT:
            # Past where any frames it could serve begin, or the object is
            # small enough to read whole at once: of no more use.
            reader = None
            await first.close()
        layout = _layout_held(layouts, key, stored, held)
        if layout is None and reader is None and stored.size <= HELD_LIMIT:
            # Small: read whole, its tail and frames at once.
            held = Held(0, await read_stored(backend, stored, 0, None))
            layout = _layout_held(layouts, key, stored, held)
        if layout is None:
            layout = await layouts.of(key, stored)
        meta = as_original(stored, layout.original)
        start, end = ranges.resolve(meta.size, offset, limit)
        frames = layout.covering(start, end)
        inner: ObjectReader | None = None
        if frames:
            at, until = _span(frames)
            if held is not None and held.holds(at, until):
                inner = _HeldRange(stored, held, at, until)
            elif reader is not None and _covers(reader, at, until):
                inner, reader = _Slice(reader, at, until), None
        if inner is None and frames:
            if reader is not None:
                unused: ObjectReader = reader
                reader = None
                await unused.close()
            inner = await open_stored(backend, stored, at, until - at)
    finally:
        if reader is not None:
            await reader.close()
    return CompressedReader(meta, inner, frames, start, end)


def _worth_holding(first: ObjectReader, size: int) -> bool:
    """Whether the first read is best read into memory: the object whole, not
    longer than HELD_LIMIT, or (of a longer one) its end, long enough to hold
    a tail and not longer than HELD_LIMIT. Its bytes may be a request of their
    own (GCS reads them after the metadata): a part of a small object, or an
    end too short for its tail, would save none."""
    length = first.end - first.start
    if first.end != size or length > HELD_LIMIT:
        return False
    return first.start == 0 or (size > HELD_LIMIT and length >= TAIL_PROBE)


def _covers(reader: ObjectReader, at: int, until: int) -> bool:
    """Whether reader holds stored bytes [at, until), not far past its start."""
    return reader.start <= at <= reader.start + SKIP_LIMIT and until <= reader.end


def _span(frames: Sequence[Frame]) -> tuple[int, int]:
    last = frames[-1]
    return frames[0].stored_offset, last.stored_offset + last.stored_size


def _layout_held(
    layouts: Layouts, key: str, stored: ObjectMeta, held: Held | None
) -> Layout | None:
    """The layout from held bytes ending the object, if they hold its tail."""
    if held is None or held.start + len(held.data) != stored.size:
        return None
    whole = held.start == 0
    try:
        if len(held.data) < seekable.FOOTER.size and not whole:
            return None
        needed = seekable.tail_size(seekable.frame_count(held.data))
        if needed > len(held.data) and not whole:
            return None
        layout = seekable.parse_tail(stored.size, held.data)
    except DamagedObject as error:
        raise damaged(key, error) from None
    layouts.remember(dataclasses.replace(stored, key=key), layout)
    return layout


async def _read_all(reader: ObjectReader) -> bytes:
    try:
        return b"".join([chunk async for chunk in reader.chunks(STORED_CHUNK)])
    finally:
        await reader.close()


class _HeldRange(RangeReader):
    """Stored bytes [start, end) of an object, from held ones."""

    def __init__(self, stored: ObjectMeta, held: Held, start: int, end: int) -> None:
        super().__init__(stored, start, end)
        self._view = memoryview(held.data)[start - held.start : end - held.start]

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        for at in range(0, len(self._view), chunk_size):
            yield bytes(self._view[at : at + chunk_size])

    async def close(self) -> None:
        self._view = memoryview(b"")


class _Slice(RangeReader):
    """Stored bytes [start, end) from a read of a range holding them."""

    def __init__(self, reader: ObjectReader, start: int, end: int) -> None:
        super().__init__(reader.meta, start, end)
        self._reader = reader

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        skip = self._start - self._reader.start
        remaining = self._end - self._start
        # Read on past the range to the reader's end when that is little, so
        # that the driver ends its read as after any other (S3 keeps the
        # connection of a body read to its end).
        drain = self._reader.end - self._end <= DRAIN_LIMIT
        async for piece in self._reader.chunks(chunk_size):
            if remaining == 0:
                if drain:
                    continue
                break
            if skip >= len(piece):
                skip -= len(piece)
                continue
            if skip:
                piece, skip = piece[skip:], 0
            if len(piece) > remaining:
                piece = piece[:remaining]
            remaining -= len(piece)
            yield piece
            if remaining == 0 and not drain:
                break
        await self.close()

    async def close(self) -> None:
        await self._reader.close()
