"""A range of a compressed object: one ranged read of the stored frames that
hold it (never the rest), each frame decompressed in a worker thread (two at
once, while the next is read), sliced to the range and cut into the chunks
asked for."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from gateway.backends.base import Backend, ObjectReader, RangeReader
from gateway.domain.objects import ObjectMeta
from gateway.layers.compression import seekable
from gateway.layers.compression.layouts import STORED_CHUNK, damaged, pinned
from gateway.layers.compression.pipeline import IN_FLIGHT, ThreadPipeline
from gateway.layers.compression.seekable import DamagedObject, Frame


async def open_frames(
    backend: Backend, key: str, stored_etag: str, frames: Sequence[Frame]
) -> ObjectReader | None:
    """A read of the stored bytes of frames (consecutive), pinned to the
    stored object of that etag; None for no frames."""
    if not frames:
        return None
    first, last = frames[0], frames[-1]
    span = last.stored_offset + last.stored_size - first.stored_offset
    return await backend.open_read(key, first.stored_offset, span, pinned(stored_etag))


class CompressedReader(RangeReader):
    """Original bytes [start, end) of the compressed object meta describes
    (as callers see it), from inner: the read of frames (open_frames)."""

    def __init__(
        self,
        meta: ObjectMeta,
        inner: ObjectReader | None,
        frames: Sequence[Frame],
        start: int,
        end: int,
    ) -> None:
        super().__init__(meta, start, end)
        self._inner = inner
        self._frames = frames
        self._in_flight: ThreadPipeline[bytes] = ThreadPipeline()

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        # Slices of each frame's bytes, copied only where a chunk spans two
        # frames (a whole frame that is one chunk goes as it is).
        carry = b""
        async for frame, data in self._decompressed():
            low = max(self.start - frame.offset, 0)
            high = min(self.end - frame.offset, frame.size)
            piece = data if (low, high) == (0, len(data)) else data[low:high]
            if carry:
                need = chunk_size - len(carry)
                carry, piece = carry + piece[:need], piece[need:]
                if len(carry) < chunk_size:
                    continue
                yield carry
                carry = b""
            whole = len(piece) - len(piece) % chunk_size
            if whole == len(piece) == chunk_size:
                yield piece
            else:
                for at in range(0, whole, chunk_size):
                    yield piece[at : at + chunk_size]
            carry = piece[whole:]
        if carry:
            yield carry

    async def _decompressed(self) -> AsyncIterator[tuple[Frame, bytes]]:
        """The covering frames' original bytes, in order."""
        frames, inner, key = self._frames, self._inner, self.meta.key
        if inner is None:
            return
        buffered = bytearray()
        index = done = 0
        try:
            async for chunk in inner.chunks(STORED_CHUNK):
                buffered += chunk
                while index < len(frames) and len(buffered) >= frames[index].stored_size:
                    size = frames[index].stored_size
                    stored = bytes(buffered[:size])
                    del buffered[:size]
                    self._decompress(stored, frames[index].size)
                    index += 1
                    if len(self._in_flight) >= IN_FLIGHT:
                        yield frames[done], await self._next(key)
                        done += 1
            while self._in_flight:
                yield frames[done], await self._next(key)
                done += 1
            if index != len(frames) or buffered:
                raise damaged(key, DamagedObject("its frames end elsewhere than it says"))
        finally:
            await self.close()

    def _decompress(self, stored: bytes, size: int) -> None:
        self._in_flight.start(seekable.decompress_frame, stored, size)

    async def _next(self, key: str) -> bytes:
        try:
            return await self._in_flight.next()
        except DamagedObject as error:
            raise damaged(key, error) from None

    async def close(self) -> None:
        self._in_flight.cancel()
        inner, self._inner = self._inner, None
        if inner is not None:
            await inner.close()
