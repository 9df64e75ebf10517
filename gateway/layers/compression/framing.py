"""What the compressing writers (writer.py for a Put, upload_writer.py for a
resumable upload's stream) share: the bytes not yet a whole frame, the frames
at work in worker threads (at most IN_FLIGHT besides the one just started),
stored in the order they were cut, and the rule that compressing a frame is
worth it only when it saves min_savings of it."""

from __future__ import annotations

import abc
import asyncio

from gateway.layers.compression import seekable
from gateway.layers.compression.pipeline import IN_FLIGHT, ThreadPipeline
from gateway.layers.compression.seekable import CompressedFrame


class FramingWriter(abc.ABC):
    """The frame pipeline of a compressing writer; a subclass says how a
    frame's work starts (_start) and how a worked frame is stored (_store)."""

    def __init__(self, level: int, min_savings: float) -> None:
        self._level = level
        self._min_savings = min_savings
        self._pending = bytearray()  # bytes not yet cut into a frame
        self._in_flight: ThreadPipeline[CompressedFrame] = ThreadPipeline()

    @abc.abstractmethod
    def _start(self, frame: bytes) -> None:
        """Start frame's work in _in_flight."""

    @abc.abstractmethod
    async def _store(self, frame: CompressedFrame) -> None:
        """Write a worked frame to the store, the frames before it written."""

    def _take_pending(self) -> bytes:
        data = bytes(self._pending)
        self._pending.clear()
        return data

    def _drop(self) -> None:
        """Forget the bytes pending and the frames at work."""
        self._pending.clear()
        self._in_flight.cancel()

    async def _compressed_if_saving(self, data: bytes, overhead: int = 0) -> CompressedFrame | None:
        """data compressed (in a worker thread) when that, with overhead
        stored bytes besides, saves min_savings of it; None otherwise."""
        compressed = await asyncio.to_thread(seekable.compress_frame, data, self._level)
        if len(compressed.data) + overhead <= len(data) * (1 - self._min_savings):
            return compressed
        return None

    async def _pipe(self, frame: bytes) -> None:
        """Start frame's work, storing the oldest frames while too many are at work."""
        self._start(frame)
        while len(self._in_flight) > IN_FLIGHT:
            await self._store(await self._in_flight.next())

    async def _store_all(self) -> None:
        """Start the bytes pending as the last frame, and store every frame at work."""
        if self._pending:
            self._start(self._take_pending())
        while self._in_flight:
            await self._store(await self._in_flight.next())
