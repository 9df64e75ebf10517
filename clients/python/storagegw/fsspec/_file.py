"""GatewayFile: the file `GatewayFileSystem.open` returns.

Reading: each block is a ranged Get of the object's generation as first seen
(a replaced object is an error, not a mix of two), with fsspec's read-ahead
cache in front (`cache_type="readahead"`, one block of `block_size` ahead).

Writing: what is written is kept, in memory up to the first full block and
then in a temporary file, and stored when the file is committed: at close, or
at the end of a transaction. A small file is one Put; one of the client's
resumable_threshold or more a resumable upload (retried from where a broken
stream left it, as put_file does), so nothing is visible before the commit and
a discarded file (a transaction rolled back, an exception in its `with` block)
leaves nothing at all.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any, Protocol

from fsspec.asyn import sync
from fsspec.spec import AbstractBufferedFile

from storagegw._types import UploadSession

__all__ = ["FileStore", "GatewayFile"]


class FileStore(Protocol):
    """What a GatewayFile asks of its file system (GatewayFileSystem, by its coroutines)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    async def _read_range(
        self, path: str, start: int, end: int, generation: int | None
    ) -> bytes: ...

    async def _put_whole(self, path: str, data: bytes, creating: bool = False) -> None: ...

    async def _put_spooled(
        self,
        path: str,
        file: IO[bytes],
        size: int,
        creating: bool,
        on_upload_start: Callable[[UploadSession], None],
    ) -> None: ...


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
        # Written bytes past the first block wait here (see the module's doc).
        self._spool: IO[bytes] | None = None
        # ... or, for a file of one block, here.
        self._whole = b""
        # A file committed or discarded is done with; committing twice does nothing.
        self._finished = False
        # The resumable upload a large file went through, once it has started.
        self.upload: UploadSession | None = None
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

    # ------------------------------------------------------------ reading

    def _fetch_range(self, start: int, end: int) -> bytes:
        generation = self.details.get("generation") or None
        data: bytes = sync(self.fs.loop, self.fs._read_range, self.path, start, end, generation)
        return data

    # ------------------------------------------------------------ writing

    def _initiate_upload(self) -> None:
        """Nothing is sent before the commit (see the module's doc)."""

    def _upload_chunk(self, final: bool = False) -> bool:
        data = self.buffer.getbuffer()
        if self._spool is None and not (final and self.offset == 0):
            # A second block is coming: past this, keep the bytes on disk.
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115  # closed at commit/discard
        if self._spool is not None:
            self._spool.write(data)
        else:
            self._whole = bytes(data)
        if final and self.autocommit:
            self.commit()
        return True

    def commit(self) -> None:
        """Store the object: one Put, or a resumable upload when large."""
        if self._finished or "r" in self.mode:
            return
        self._finished = True
        creating = self.mode == "xb"
        try:
            if self._spool is None:
                sync(self.fs.loop, self.fs._put_whole, self.path, self._whole, creating)
            else:
                size = self._spool.tell()
                self._spool.seek(0)
                sync(
                    self.fs.loop,
                    self.fs._put_spooled,
                    self.path,
                    self._spool,
                    size,
                    creating,
                    self._upload_started,
                )
        finally:
            self._drop()

    def discard(self) -> None:
        """Forget what was written: nothing is stored."""
        self._finished = True
        self._drop()

    def _upload_started(self, session: UploadSession) -> None:
        self.upload = session

    def _drop(self) -> None:
        self._whole = b""
        if self._spool is not None:
            self._spool.close()
            self._spool = None
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
