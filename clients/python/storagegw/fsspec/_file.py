"""GatewayFile: the file `GatewayFileSystem.open` returns.

Reading: each block is a ranged Get of the object's generation as first seen
(a replaced object is an error, not a mix of two), with fsspec's read-ahead
cache in front (`cache_type="readahead"`, one block of `block_size` ahead).

Writing is streamed, as s3fs streams a multipart upload: each block that
fills goes to a PartUpload (see _upload.py), through fsspec's loop. Nothing
is visible before the commit: at close, or at the end of a transaction. A
discarded file (a transaction rolled back, an exception in its `with`
block, a failed part) aborts its upload and leaves nothing.
"""

from __future__ import annotations

import io
from types import TracebackType
from typing import Any

from fsspec.asyn import sync
from fsspec.spec import AbstractBufferedFile

from storagegw.fsspec._upload import FileStore, PartFile

__all__ = ["GatewayFile"]


class GatewayFile(PartFile, AbstractBufferedFile):  # type: ignore[misc]  # fsspec is untyped
    """A file of a GatewayFileSystem, in mode "rb", "wb" or "xb" (create only)."""

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
        self._attach_part(details, mode == "xb")

    @property
    def persisted(self) -> int:
        """The bytes of the upload the gateway holds."""
        return self.part.persisted

    @property
    def unpersisted(self) -> int:
        """Bytes the file holds besides its block buffer: sent (or to be sent)
        but not yet persisted by the gateway."""
        return len(self.part.held)

    # ------------------------------------------------------------ reading

    def _fetch_range(self, start: int, end: int) -> bytes:
        generation = self.details.get("generation") or None
        data: bytes = sync(self.fs.loop, self.fs._read_range, self.path, start, end, generation)
        return data

    # ------------------------------------------------------------ writing

    def _initiate_upload(self) -> None:
        """Nothing yet: the upload starts when a block is to be sent."""

    def _upload_chunk(self, final: bool = False) -> bool:
        with self.buffer.getbuffer() as block:
            sync(self.fs.loop, self.part.add, block, final)
        if final and self.autocommit:
            self.commit()
        return True

    def commit(self) -> None:
        """Store the object: its one Put, or the last part of its upload."""
        if "r" not in self.mode:
            try:
                sync(self.fs.loop, self.part.commit)
            finally:
                self.buffer = io.BytesIO()

    def discard(self) -> None:
        """Forget what was written and abort the upload: nothing is stored."""
        if "r" not in self.mode:
            sync(self.fs.loop, self.part.discard)
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
