"""PartUpload: how a written file reaches the gateway, shared by the file
`open` returns (GatewayFile, through fsspec's loop), the one `open_async`
returns (AsyncGatewayFile) and a `put_file` inside a transaction.

A file closed before its first block fills is one Put at the commit. Once a
block fills, a resumable upload starts and each full block goes as a part
of it (the client's write_upload, resumed from the persisted size after a
broken stream), keeping only what the gateway has not persisted yet; the
commit sends the rest and finishes the upload. Nothing is visible before
the commit. A discarded upload is aborted and leaves nothing.

A backend persists whole units (the memory driver's 256 KiB, an S3 part, the
local driver's 32 MiB checkpoints), so a part may be persisted only in part:
the rest is kept and sent again with the next part, and each part that
persisted nothing doubles the size the next waits for, so that a unit larger
than a block is still reached without resending it over and over.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from typing import Any, Protocol

from storagegw._types import UploadSession, UploadStatus

__all__ = ["FileStore", "PartFile", "PartUpload"]

Bytes = bytes | bytearray | memoryview


class FileStore(Protocol):
    """What a written or read file asks of its file system (GatewayFileSystem's coroutines)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    async def _read_range(
        self, path: str, start: int, end: int, generation: int | None
    ) -> bytes: ...

    async def _put_whole(self, path: str, data: Bytes, creating: bool = False) -> None: ...

    async def _start_upload(self, path: str, creating: bool) -> UploadSession: ...

    async def _write_part(
        self, path: str, upload_id: str, data: Bytes, offset: int, finish: bool, creating: bool
    ) -> UploadStatus: ...

    async def _abort_upload(self, upload_id: str) -> None: ...


class PartUpload:
    """The bytes of one object on their way to the gateway (see the module's doc).

    path: the object's key; creating: store it only where nothing is (mode
    "xb"); part_size: the bytes that wait before a part is sent (the file's
    block size).
    """

    def __init__(self, fs: FileStore, path: str, creating: bool, part_size: int) -> None:
        self.fs = fs
        self.path = path
        self.creating = creating
        # The resumable upload, once a part was to be sent.
        self.upload: UploadSession | None = None
        # What the gateway holds of the upload: the object's first `persisted` bytes.
        self.persisted = 0
        # The bytes after those, written but not yet persisted (all of a
        # small object's bytes, for its one Put).
        self.held = bytearray()
        self._part_size = max(1, part_size)
        # A committed or discarded upload is done with; committing twice does nothing.
        self.finished = False

    def _check_open(self) -> None:
        if self.finished:
            raise OSError(errno.EIO, "the file was discarded: nothing is stored", self.path)

    async def add(self, block: Bytes, final: bool = False) -> None:
        """Take the file's next block: keep it (the last block, or too little
        waits) or send it, with what waits before it, as a part. A failed
        part discards the upload: the object could not be whole."""
        self._check_open()
        if final or len(self.held) + len(block) < self._part_size:
            self.held += block  # sent at the commit, or with the next block
            return
        try:
            await self._send(block)
        except BaseException:
            await self.discard()
            raise

    async def _send(self, block: Bytes) -> None:
        if self.upload is None:
            self.upload = await self.fs._start_upload(self.path, self.creating)
        part: Bytes = block
        if self.held:
            self.held += block
            part = self.held
        status = await self._write(part, finish=False)
        kept = status.persisted_size - self.persisted
        if kept == 0:
            self._part_size *= 2  # the backend's unit is larger: wait for more
        self.persisted = status.persisted_size
        # A new bytearray: the one sent may still be exported to the sending flow.
        self.held = bytearray(memoryview(part)[kept:])

    async def _write(self, data: Bytes, finish: bool) -> UploadStatus:
        assert self.upload is not None
        return await self.fs._write_part(
            self.path, self.upload.upload_id, data, self.persisted, finish, self.creating
        )

    def release(self) -> int:
        """Drop the bytes held (the caller can read them again, from the
        returned offset on) and return where they started: `persisted`."""
        self.held = bytearray()
        return self.persisted

    async def commit(self, rest: Bytes | None = None) -> None:
        """Store the object: its one Put, or the last part of its upload.
        rest: the bytes from `persisted` on, where they were released."""
        if self.finished:
            return
        tail = self.held if rest is None else rest
        self.finished = True
        try:
            if self.upload is None:
                await self.fs._put_whole(self.path, tail, self.creating)
            else:
                await self._write(tail, finish=True)
        except BaseException:
            self.finished = False
            await self.discard()  # not committed: abort the upload, leave nothing
            raise
        finally:
            self.held = bytearray()

    async def discard(self) -> None:
        """Forget what was written and abort the upload: nothing is stored."""
        if self.finished:
            return
        self.finished = True
        self.held = bytearray()
        if self.upload is not None:
            # Best effort: an upload left behind expires and is cleaned up.
            with contextlib.suppress(Exception):
                await self.fs._abort_upload(self.upload.upload_id)


class PartFile:
    """What GatewayFile and AsyncGatewayFile share over their fsspec bases:
    the file system they read from and the PartUpload their writes go to."""

    fs: FileStore
    path: str
    blocksize: int
    details: dict[str, Any]
    part: PartUpload

    def _attach_part(self, details: dict[str, Any] | None, creating: bool) -> None:
        """After fsspec's __init__: the object's details when the opener has
        them, and the PartUpload of the file's blocks (a file for reading
        sends none)."""
        if details is not None:
            self.details = details
        self.part = PartUpload(self.fs, self.path, creating, int(self.blocksize))

    @property
    def upload(self) -> UploadSession | None:
        """The resumable upload the file streams to, once its first block filled."""
        return self.part.upload
