"""A write to a compressed bucket of a compressible type: the bytes cut into
frames of the bucket's frame size, each compressed in a worker thread (two at
once, while the previous frame is written). The first frame decides: when
compressing it does not save min_savings of it, the object is stored as it
is. The inner writer is opened once that is decided, with the reserved entry
marking a compressed object, and committed with the stored bytes' CRC32C and
size (a driver may check them against what its store computed); the
original's go in the object's tail (seekable.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from gateway.backends.base import Backend, ObjectWriter
from gateway.domain.checksums import crc32c
from gateway.domain.crc32c_combine import crc32c_combine
from gateway.domain.objects import Checksums, ObjectMeta, WriteOptions
from gateway.layers.compression import seekable
from gateway.layers.compression.framing import FramingWriter
from gateway.layers.compression.layouts import as_original, marked
from gateway.layers.compression.seekable import CompressedFrame, Layout, Original
from gateway.layers.compression.settings import CompressionSettings


class CompressingWriter(FramingWriter):
    """An ObjectWriter storing its bytes compressed when that saves enough."""

    def __init__(
        self,
        backend: Backend,
        key: str,
        options: WriteOptions,
        settings: CompressionSettings,
        remember: Callable[[ObjectMeta, Layout], None],
    ) -> None:
        super().__init__(settings.level, settings.min_savings)
        self._backend = backend
        self._key = key
        self._options = options
        self._settings = settings
        self._remember = remember
        self._inner: ObjectWriter | None = None
        self._compressing: bool | None = None  # None: not decided yet
        self._frames: list[tuple[int, int]] = []  # (stored size, original size)
        self._stored_crc32c = 0
        self._stored_size = 0

    async def write(self, data: bytes) -> None:
        try:
            if self._compressing is False:
                assert self._inner is not None
                await self._inner.write(data)
                return
            self._pending += data
            frame_size = self._settings.frame_size
            while not self._as_is() and len(self._pending) >= frame_size:
                frame = bytes(self._pending[:frame_size])
                del self._pending[:frame_size]
                await self._frame(frame)
            if self._as_is() and self._pending:
                assert self._inner is not None
                await self._inner.write(bytes(self._pending))
                self._pending.clear()
        except BaseException:
            await self.abort()
            raise

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        try:
            if self._compressing is None:
                await self._decide_last()
            if self._compressing is False:
                assert self._inner is not None
                return await self._inner.commit(checksums)
            await self._store_all()
            original = Original(checksums.size, checksums.crc32c, checksums.sha256)
            await self._store_bytes(seekable.tail(original, self._frames))
            assert self._inner is not None
            inner, self._inner = self._inner, None
            stored = await inner.commit(Checksums(self._stored_crc32c, None, self._stored_size))
        except BaseException:
            await self.abort()
            raise
        self._remember(stored, Layout(seekable.frames_of(self._frames), original))
        return as_original(stored, original)

    async def abort(self) -> None:
        self._drop()
        inner, self._inner = self._inner, None
        if inner is not None:
            await inner.abort()

    def _as_is(self) -> bool:
        """Whether the object is being stored as it is (decided so)."""
        return self._compressing is False

    async def _frame(self, frame: bytes) -> None:
        """Store one full frame; the first decides how the object is stored."""
        if self._compressing is None:
            compressed = await self._compressed_if_saving(frame)
            if compressed is None:
                await self._open(compressing=False)
                assert self._inner is not None
                await self._inner.write(frame)
                return
            await self._open(compressing=True)
            await self._store(compressed)
            return
        await self._pipe(frame)

    async def _decide_last(self) -> None:
        """Decide for an object smaller than a frame, held whole in _pending."""
        data = self._take_pending()
        compressed = None
        if data:
            compressed = await self._compressed_if_saving(data, seekable.tail_size(1))
        if compressed is None:
            await self._open(compressing=False)
            assert self._inner is not None
            if data:
                await self._inner.write(data)
            return
        await self._open(compressing=True)
        await self._store(compressed)

    def _start(self, frame: bytes) -> None:
        self._in_flight.start(seekable.compress_frame, frame, self._level)

    async def _open(self, *, compressing: bool) -> None:
        options = self._options
        if compressing:
            # The stored size is not the declared one: no hint of it.
            options = dataclasses.replace(
                options, metadata=marked(options.metadata), size_hint=None
            )
        self._inner = await self._backend.open_write(self._key, options)
        self._compressing = compressing

    async def _store(self, frame: CompressedFrame) -> None:
        self._frames.append((len(frame.data), frame.original_size))
        await self._store_bytes(frame.data, frame.crc32c)

    async def _store_bytes(self, data: bytes, crc: int | None = None) -> None:
        assert self._inner is not None
        await self._inner.write(data)
        crc = crc32c(data) if crc is None else crc
        self._stored_crc32c = crc32c_combine(self._stored_crc32c, crc, len(data))
        self._stored_size += len(data)
