"""One stream of a resumable upload into a compressed bucket: the original
bytes cut into frames as a Put cuts them (writer.py), each compressed in a
worker thread and appended to the driver's upload as it is done; the seek
table and the original's frame are appended at commit.

The gateway checkpoints this writer at each frame boundary (checkpoint_bytes
is the frame size), with its state as of that original offset. The driver
persists stored bytes in its own units: when the stored stream passes one of
them, within some frame, the driver is checkpointed there with the progress
(upload_progress.py) naming that frame, as soon as the gateway's state at
the frame's start is known. A continuation thus resumes at a frame's start
in original bytes, and skips the stored bytes of that frame persisted
already (checking they are what compressing the resent bytes gives)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.backends.base import UploadWriter, encode_off_loop
from gateway.domain.checksums import crc32c
from gateway.domain.crc32c_combine import crc32c_combine
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Checksums, ObjectMeta
from gateway.layers.compression import seekable
from gateway.layers.compression.framing import FramingWriter
from gateway.layers.compression.layouts import as_original
from gateway.layers.compression.seekable import CompressedFrame, Layout, Original
from gateway.layers.compression.upload_progress import (
    COMPRESSED,
    STORED,
    UNDECIDED,
    UploadHandle,
    UploadProgress,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Mark:
    """A driver checkpoint waiting for the gateway's state at offset: at
    stored size, within the frame after the first `frames` ones."""

    size: int
    frames: int
    stored_crc32c: int
    offset: int
    partial: int
    partial_crc32c: int


class CompressingUploadWriter(FramingWriter):
    """An UploadWriter storing frames of the original bytes into inner."""

    def __init__(
        self,
        inner: UploadWriter,
        key: str,
        handle: UploadHandle,
        progress: UploadProgress,
        min_savings: float,
        remember: Callable[[ObjectMeta, Layout], None],
    ) -> None:
        super().__init__(handle.level, min_savings)
        self._inner = inner
        self._key = key
        self._frame_size = handle.frame_size
        self._remember = remember
        self._unit = inner.checkpoint_bytes
        self._mode = progress.mode
        self._frames = list(progress.frames)  # (stored size, original size), stored wholly
        self._stored = progress.stored_offset  # their stored bytes
        self._stored_crc32c = progress.stored_crc32c
        self._offset = progress.offset  # their original bytes
        # Of the next frame's stored bytes, those the driver holds already.
        self._skip = progress.partial
        self._skip_crc32c = progress.partial_crc32c
        self._written = self._stored + self._skip  # what the driver holds or was given
        self._states = {progress.offset: progress.gateway_state}
        self._marks: deque[_Mark] = deque()
        self._failed = False  # a frame failed to be stored: no more may be

    @property
    def checkpoint_bytes(self) -> int:
        return self._frame_size

    async def write(self, data: bytes) -> None:
        self._pending += data
        size = self._frame_size
        while len(self._pending) >= size:
            frame = bytes(self._pending[:size])
            del self._pending[:size]
            await self._frame(frame)

    async def checkpoint(self, size: int, state: bytes) -> None:
        self._states[size] = state
        await self._emit()

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        try:
            original = Original(checksums.size, checksums.crc32c, checksums.sha256)
            if self._mode == UNDECIDED:
                await self._decide_last()
            await self._store_all()
            if self._skip or self._offset != original.size:
                raise self._mismatch()
            tail = seekable.tail(original, self._frames)
            await self._inner.write(tail)
            self._stored_crc32c = crc32c_combine(self._stored_crc32c, crc32c(tail), len(tail))
            self._stored += len(tail)
        except BaseException:
            self._drop()
            await self._inner.suspend()  # resumable still, from what is durable
            raise
        stored = await self._inner.commit(Checksums(self._stored_crc32c, None, self._stored))
        self._remember(stored, Layout(seekable.frames_of(self._frames), original))
        return as_original(stored, original)

    async def suspend(self) -> None:
        # Frames compressed already are stored (the driver may persist them),
        # unless storing failed: nothing may follow a frame not stored.
        try:
            while self._in_flight and not self._failed:
                await self._store(await self._in_flight.next())
        except Exception as error:
            log.info("compressed upload of %r stopped: %s", self._key, type(error).__name__)
        finally:
            self._drop()
            await self._inner.suspend()

    async def abort(self) -> None:
        self._drop()
        await self._inner.abort()

    async def _frame(self, frame: bytes) -> None:
        """Store one full frame; the upload's first decides how frames are stored."""
        if self._mode == UNDECIDED:
            compressed = await self._compressed_if_saving(frame)
            self._mode = STORED if compressed is None else COMPRESSED
            if compressed is None:
                compressed = await asyncio.to_thread(seekable.store_frame, frame)
            await self._store(compressed)
            return
        await self._pipe(frame)

    async def _decide_last(self) -> None:
        """Decide for an upload smaller than a frame, held whole in _pending."""
        data = self._take_pending()
        if not data:
            return  # no frame: the seek table alone
        compressed = await self._compressed_if_saving(data, seekable.tail_size(1))
        if compressed is None:
            compressed = await asyncio.to_thread(seekable.store_frame, data)
        await self._store(compressed)

    def _start(self, frame: bytes) -> None:
        if self._mode == COMPRESSED:
            self._in_flight.start(seekable.compress_frame, frame, self._level)
        else:
            self._in_flight.start(seekable.store_frame, frame)

    def _mismatch(self) -> GatewayError:
        return GatewayError(
            Reason.CHECKSUM_MISMATCH,
            f"the bytes sent from offset {self._offset} of {self._key!r} are not those the "
            "upload holds from there: continue it with the same bytes",
            key=self._key,
        )

    async def _store(self, frame: CompressedFrame) -> None:
        """Append a frame (past what the driver holds of it already) and
        mark the driver's checkpoints that fall within it."""
        self._failed = True  # until stored
        data, start = frame.data, self._stored
        end = start + len(data)
        if self._skip:
            skip, self._skip = self._skip, 0
            if len(data) < skip or await encode_off_loop(crc32c, data[:skip]) != self._skip_crc32c:
                raise self._mismatch()
            await self._inner.write(data[skip:])
        else:
            await self._inner.write(data)
        crc_before, offset_before = self._stored_crc32c, self._offset
        index = len(self._frames)
        self._frames.append((len(data), frame.original_size))
        self._stored = end
        self._stored_crc32c = crc32c_combine(crc_before, frame.crc32c, len(data))
        self._offset += frame.original_size
        unit = self._unit
        for size in range((self._written // unit + 1) * unit, end + 1, unit):
            if size == end:  # the start of the next frame
                mark = _Mark(size, index + 1, self._stored_crc32c, self._offset, 0, 0)
            else:
                part = size - start
                part_crc = await encode_off_loop(crc32c, data[:part])
                mark = _Mark(size, index, crc_before, offset_before, part, part_crc)
            self._marks.append(mark)
        self._written = max(self._written, end)
        self._failed = False
        await self._emit()

    async def _emit(self) -> None:
        """Checkpoint the driver at each mark whose gateway state is known."""
        while self._marks and self._marks[0].offset in self._states:
            mark = self._marks.popleft()
            progress = UploadProgress(
                self._states[mark.offset],
                self._mode,
                tuple(self._frames[: mark.frames]),
                mark.stored_crc32c,
                mark.offset,
                mark.partial,
                mark.partial_crc32c,
            )
            await self._inner.checkpoint(mark.size, progress.encode())
        # The states still needed: at the marks' frames, and at those to come.
        low = self._marks[0].offset if self._marks else self._offset
        for offset in [offset for offset in self._states if offset < low]:
            del self._states[offset]
