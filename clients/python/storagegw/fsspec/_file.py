"""GatewayFile: the file `GatewayFileSystem.open` returns.

Reading: each block is a ranged Get of the object's generation as first seen
(a replaced object is an error, not a mix of two), with fsspec's read-ahead
cache in front (`cache_type="readahead"`, one block of `block_size` ahead).

Writing is streamed, as s3fs streams a multipart upload. A file closed
before its first block fills is one Put at the commit. Once a block fills,
the file starts a resumable upload and sends each full block as a part of
it (the client's write_upload, resumed from the persisted size after a
broken stream), keeping only what the gateway has not persisted yet; the
commit sends the rest and finishes the upload. Nothing is visible before
the commit: at close, or at the end of a transaction. A discarded file (a
transaction rolled back, an exception in its `with` block, a failed part)
aborts its upload and leaves nothing.

A backend persists whole units (the memory driver's 256 KiB, an S3 part, the
local driver's 32 MiB checkpoints), so a part may be persisted only in part:
the file keeps the rest and sends it again with the next part, and each
part that persisted nothing doubles the size the next waits for, so that a
unit larger than a block is still reached without resending it over and over.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
from types import TracebackType
from typing import Any, Protocol

from fsspec.asyn import sync
from fsspec.spec import AbstractBufferedFile

from storagegw._types import UploadSession, UploadStatus

__all__ = ["FileStore", "GatewayFile"]


class FileStore(Protocol):
    """What a GatewayFile asks of its file system (GatewayFileSystem, by its coroutines)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    async def _read_range(
        self, path: str, start: int, end: int, generation: int | None
    ) -> bytes: ...

    async def _put_whole(self, path: str, data: bytes, creating: bool = False) -> None: ...

    async def _start_upload(self, path: str, creating: bool) -> UploadSession: ...

    async def _write_part(
        self,
        path: str,
        upload_id: str,
        data: bytes | bytearray | memoryview,
        offset: int,
        finish: bool,
        creating: bool,
    ) -> UploadStatus: ...

    async def _abort_upload(self, upload_id: str) -> None: ...


class GatewayFile(AbstractBufferedFile):  # type: ignore[misc]  # fsspec is untyped
    """A file of a GatewayFileSystem, in mode "rb", "wb" or "xb" (create only)."""

    fs: FileStore

    def __init__(
        self,
        fs: FileStore,
        path: str,
        mode: str = "rb",
        block_size: int | str | None = "default",
        autocommit: bool = True,
        cache_type: str = "readahead",
        cache_options: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        size = kwargs.pop("size", None) if details is None else details["size"]
        # A file of one block, stored in one Put at the commit.
        self._whole = b""
        # The resumable upload a larger file streams to, once its first block filled.
        self.upload: UploadSession | None = None
        # What the gateway holds of the upload: the object's first `persisted` bytes.
        self.persisted = 0
        # The bytes after those, written but not yet persisted (see the module's doc).
        self._unpersisted = bytearray()
        # A committed or discarded file is done with; committing twice does nothing.
        self._finished = False
        super().__init__(
            fs,
            path,
            mode=mode,
            block_size=block_size,
            autocommit=autocommit,
            cache_type=cache_type,
            cache_options=cache_options,
            size=size,
            **kwargs,
        )
        # A part is sent once this many bytes wait (see the module's doc).
        self._part_size = max(1, int(self.blocksize))
        if details is not None:
            self.details = details

    @classmethod
    def written(cls, fs: FileStore, path: str, data: bytes, mode: str = "overwrite") -> GatewayFile:
        """A closed file holding `data`, not yet committed (pipe_file in a
        transaction); mode "create" stores it only where nothing is."""
        file = cls(fs, path, "xb" if mode == "create" else "wb", autocommit=False)
        file.write(data)
        file.close()
        return file

    @property
    def unpersisted(self) -> int:
        """Bytes the file holds besides its block buffer: sent (or to be sent)
        but not yet persisted by the gateway."""
        return len(self._unpersisted)

    # ------------------------------------------------------------ reading

    def _fetch_range(self, start: int, end: int) -> bytes:
        generation = self.details.get("generation") or None
        data: bytes = sync(self.fs.loop, self.fs._read_range, self.path, start, end, generation)
        return data

    # ------------------------------------------------------------ writing

    @property
    def _creating(self) -> bool:
        return bool(self.mode == "xb")

    def _initiate_upload(self) -> None:
        """Nothing yet: the upload starts when a block is to be sent."""

    def _upload_chunk(self, final: bool = False) -> bool:
        if self._finished:
            raise OSError(errno.EIO, "the file was discarded: nothing is stored", self.path)
        with self.buffer.getbuffer() as block:
            if final and self.upload is None:
                self._whole = bytes(block)  # closed before a block filled: one Put
            else:
                try:
                    self._send(block, final)
                except BaseException:
                    self.discard()  # a part lost: the object cannot be whole
                    raise
        if final and self.autocommit:
            self.commit()
        return True

    def _send(self, block: memoryview, final: bool) -> None:
        """Send a full block as a part (with what waits before it), or keep it."""
        if final or len(self._unpersisted) + len(block) < self._part_size:
            self._unpersisted += block  # sent at the commit, or with the next block
            return
        if self.upload is None:
            self.upload = sync(self.fs.loop, self.fs._start_upload, self.path, self._creating)
        part: bytes | bytearray | memoryview = block
        if self._unpersisted:
            self._unpersisted += block
            part = self._unpersisted
        status = self._write_part(part, finish=False)
        kept = status.persisted_size - self.persisted
        if kept == 0:
            self._part_size *= 2  # the backend's unit is larger: wait for more
        self.persisted = status.persisted_size
        # A new bytearray: the one sent may still be exported to the sending flow.
        self._unpersisted = bytearray(memoryview(part)[kept:])

    def _write_part(self, data: bytes | bytearray | memoryview, finish: bool) -> UploadStatus:
        assert self.upload is not None
        status: UploadStatus = sync(
            self.fs.loop,
            self.fs._write_part,
            self.path,
            self.upload.upload_id,
            data,
            self.persisted,
            finish,
            self._creating,
        )
        return status

    def commit(self) -> None:
        """Store the object: its one Put, or the last part of its upload."""
        if self._finished or "r" in self.mode:
            return
        if self.upload is None:
            self._finished = True
            try:
                sync(self.fs.loop, self.fs._put_whole, self.path, self._whole, self._creating)
            finally:
                self._drop()
            return
        try:
            self._write_part(self._unpersisted, finish=True)
        except BaseException:
            self.discard()  # not committed: abort the upload, leave nothing
            raise
        self._finished = True
        self._drop()

    def discard(self) -> None:
        """Forget what was written and abort the upload: nothing is stored."""
        if self._finished:
            return
        self._finished = True
        self._drop()
        if self.upload is not None:
            # Best effort: an upload left behind expires and is cleaned up.
            with contextlib.suppress(Exception):
                sync(self.fs.loop, self.fs._abort_upload, self.upload.upload_id)

    def _drop(self) -> None:
        self._whole = b""
        self._unpersisted = bytearray()
        self.buffer = io.BytesIO()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A write left by an exception is discarded, not committed half-done."""
        if exc_type is not None and self.writable():
            self.discard()
            self.closed = True
            return
        self.close()
