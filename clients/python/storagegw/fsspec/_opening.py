"""FileOpening: GatewayFileSystem's `open` (a GatewayFile, _file.py) and
`open_async` (an AsyncGatewayFile, _async_file.py), which check the path the
same way: a file to read must be an object, one to create ("xb") must not
exist yet."""

from __future__ import annotations

import asyncio
import errno
from typing import TYPE_CHECKING, Any, cast

from fsspec.asyn import sync

from storagegw.fsspec._async_file import AsyncGatewayFile
from storagegw.fsspec._entries import Entry, strip_url
from storagegw.fsspec._file import GatewayFile
from storagegw.fsspec._upload import FileStore

__all__ = ["FileOpening"]


class FileOpening:
    """GatewayFileSystem's ways of opening a file."""

    if TYPE_CHECKING:  # GatewayFileSystem's and AsyncFileSystem's
        loop: asyncio.AbstractEventLoop

        async def _info(self, path: str, **kwargs: Any) -> Entry: ...

        async def _isfile(self, path: str) -> bool: ...

    def _store(self) -> FileStore:
        """This file system, as its files see it (GatewayFileSystem is a FileStore)."""
        return cast("FileStore", self)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> GatewayFile:
        key = strip_url(path)
        details = sync(self.loop, self._open_details, path, key, mode)
        return GatewayFile(
            self._store(),
            key,
            mode,
            block_size=block_size,
            autocommit=autocommit,
            cache_options=cache_options,
            details=details,
            **kwargs,
        )

    async def open_async(
        self, path: str, mode: str = "rb", block_size: int | None = None, **kwargs: Any
    ) -> AsyncGatewayFile:
        """A file to read or write with `await` (fsspec's AbstractAsyncStreamedFile),
        as open() does, committed at its close whatever the transaction."""
        if "b" not in mode or kwargs.get("compression"):
            raise ValueError(f"mode {mode!r}: open_async reads and writes bytes only")
        key = strip_url(path)
        details = await self._open_details(path, key, mode)
        return AsyncGatewayFile(self._store(), key, mode, block_size or "default", details)

    async def _open_details(self, path: str, key: str, mode: str) -> Entry | None:
        """What opening `key` in `mode` needs: the object's entry for reading."""
        if mode == "rb":
            details = await self._info(key)
            if details["type"] != "file":
                raise IsADirectoryError(errno.EISDIR, f"{key} is a directory", path)
            return details
        if mode == "xb" and await self._isfile(key):
            raise FileExistsError(errno.EEXIST, f"{key} exists already", path)
        if mode not in ("wb", "xb"):
            raise NotImplementedError(f"mode {mode!r}: objects are read, or written whole")
        return None
