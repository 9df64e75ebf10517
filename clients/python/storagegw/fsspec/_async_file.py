"""AsyncGatewayFile: the file `GatewayFileSystem.open_async` returns.

The same reads and writes as GatewayFile (_file.py), awaited on the caller's
loop instead of run through fsspec's: reading is ranged Gets of the
generation first seen, one block ahead of the reader (fsspec's caches are
synchronous, so the read-ahead is here); writing goes through a PartUpload
(_upload.py), one Put or a resumable upload committed at close, nothing
visible before, aborted when the `async with` block raises. fsspec's async
files always commit at close: a transaction does not defer them.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from fsspec.asyn import AbstractAsyncStreamedFile

from storagegw.fsspec._upload import FileStore, PartFile

__all__ = ["AsyncGatewayFile"]


class AsyncGatewayFile(PartFile, AbstractAsyncStreamedFile):  # type: ignore[misc]  # fsspec is untyped
    """A file of a GatewayFileSystem opened with open_async, in mode "rb",
    "wb" or "xb" (create only); use it in `async with`."""

    def __init__(
        self,
        fs: FileStore,
        path: str,
        mode: str = "rb",
        block_size: int | str | None = "default",
        details: dict[str, Any] | None = None,
    ) -> None:
        size = None if details is None else details["size"]
        # fsspec's async file writes in mode "wb" only: "xb" is a "wb" file
        # whose upload creates.
        creating = mode == "xb"
        mode = "wb" if creating else mode
        super().__init__(fs, path, mode, block_size, cache_type="none", size=size)
        self._attach_part(details, creating)
        # The read-ahead: the object's bytes [_ahead_start, _ahead_start + len(_ahead)).
        self._ahead = b""
        self._ahead_start = 0
        # The ranged Gets made, and the bytes they asked for.
        self.fetches = 0
        self.fetched = 0

    # ------------------------------------------------------------ reading

    async def _fetch_range(self, start: int, end: int) -> bytes:
        """Bytes [start, end): from the read-ahead where it has them, the rest
        with one ranged Get that reads a block further (as fsspec's
        ReadAheadCache does for the sync file)."""
        end = min(end, self.size)
        if start >= end:
            return b""
        ahead_end = self._ahead_start + len(self._ahead)
        if self._ahead_start <= start and end <= ahead_end:
            return self._ahead[start - self._ahead_start : end - self._ahead_start]
        known = b""
        if self._ahead_start <= start < ahead_end:
            known = self._ahead[start - self._ahead_start :]
            start = ahead_end
        generation = self.details.get("generation") or None
        fetch_end = min(self.size, end + int(self.blocksize))
        self.fetches += 1
        self.fetched += fetch_end - start
        self._ahead = await self.fs._read_range(self.path, start, fetch_end, generation)
        self._ahead_start = start
        return known + self._ahead[: end - start]

    # ------------------------------------------------------------ writing

    async def _upload_chunk(self, final: bool = False) -> bool:
        with self.buffer.getbuffer() as block:
            await self.part.add(block, final)
        if final:
            await self.part.commit()
        return True

    async def close(self) -> None:
        """Store what was written (see the module's doc). A file whose commit
        failed is closed too: its upload is aborted, nothing is left to do."""
        try:
            await super().close()
        except BaseException:
            self.closed = True
            raise

    async def discard(self) -> None:
        """Forget what was written and abort the upload: nothing is stored."""
        await self.part.discard()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A write left by an exception is discarded, not committed half-done."""
        if exc_type is not None and self.mode == "wb":
            self.closed = True
            await self.part.discard()
            return
        await self.close()
