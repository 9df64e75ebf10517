"""GatewayFileSystem: one bucket of a storage gateway as an fsspec file system.

Object-store semantics, as s3fs and gcsfs have them: keys are paths, a
directory is a prefix some key continues with "/" (so `mkdir` makes nothing and
a directory disappears with its last object), `ls` is a listing with the
delimiter "/", `find` one flat listing. Every operation is a coroutine on the
bundled AsyncClient (fsspec's AsyncFileSystem), so `cat`, `get`, `put`, `rm`
and `cp` of many files run concurrently. See _file.py for open(), _async_file.py
for open_async() and _deferred.py for writes in a transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
from collections.abc import AsyncGenerator
from typing import Any, cast

from fsspec.asyn import AsyncFileSystem, sync
from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from storagegw import errors
from storagegw._common import DEFAULT_TARGET
from storagegw._credentials import TlsConfig
from storagegw._loop_client import LoopClient
from storagegw._resumable import DEFAULT_RESUMABLE_THRESHOLD
from storagegw._retry import RetryPolicy
from storagegw._types import ListPage
from storagegw.aio import AsyncClient
from storagegw.fsspec._deferred import defer_pipe, defer_put
from storagegw.fsspec._entries import (
    PROTOCOL,
    Entry,
    bucket_of_url,
    directory_entry,
    file_entry,
    needs_size,
    parents_between,
    read_window,
    strip_url,
)
from storagegw.fsspec._errors import as_os_error, os_errors
from storagegw.fsspec._opening import FileOpening
from storagegw.fsspec._writes import FileWrites

__all__ = ["GatewayFileSystem"]

# Where the gateway is when no target is given: the CLI's variable, then its default.
TARGET_VARIABLE = "STORAGEGW_TARGET"


class GatewayFileSystem(FileOpening, FileWrites, AsyncFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """A bucket of a storagegw gateway: fsspec.filesystem("storagegw", target=..., bucket=...).

    target: the gateway's address ($STORAGEGW_TARGET, else 127.0.0.1:50051);
    bucket: the bucket ("" for the gateway's default). A URL names the bucket
    as its host: fsspec.open("storagegw://photos/2024/a.jpg", target=...).
    token, tls, timeout, retry and resumable_threshold are AsyncClient's
    options (`put` sends a local file of resumable_threshold bytes or more
    through a resumable upload; a file opened for writing streams its blocks
    to one once its first block fills, retried as `retry` says). Other
    keyword arguments are fsspec's (asynchronous, loop, batch_size,
    skip_instance_cache...).
    """

    protocol = PROTOCOL
    root_marker = ""

    def __init__(
        self,
        target: str | None = None,
        bucket: str = "",
        *,
        token: str | None = None,
        tls: TlsConfig | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        resumable_threshold: int = DEFAULT_RESUMABLE_THRESHOLD,
        **fsspec_options: Any,
    ) -> None:
        super().__init__(**fsspec_options)
        self.target = target or os.environ.get(TARGET_VARIABLE) or DEFAULT_TARGET
        self.bucket = bucket
        client_options = {
            "token": token,
            "tls": tls,
            "timeout": timeout,
            "retry": retry,
            "resumable_threshold": resumable_threshold,
        }
        # Made on first use, on the loop that uses it (fsspec's own, unless
        # asynchronous=True).
        self._clients = LoopClient(self.target, bucket, client_options)

    # ------------------------------------------------------------ paths

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return strip_url(path)

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        bucket = bucket_of_url(path)
        return {} if bucket is None else {"bucket": bucket}

    def unstrip_protocol(self, name: str) -> str:
        return f"{PROTOCOL}://{self.bucket}/{strip_url(name)}"

    # ------------------------------------------------------------ the client

    async def _gateway(self) -> AsyncClient:
        return self._clients.get()

    async def _close(self) -> None:
        await self._clients.close()

    def close(self) -> None:  # a later call opens another connection
        if self._clients.open_in(self.loop):
            sync(self.loop, self._close)

    async def close_async(self) -> None:
        """close() for a file system made with asynchronous=True, on its loop."""
        await self._close()

    # ------------------------------------------------------------ metadata

    async def _lookup(self, key: str) -> Entry | None:
        """The object `key`, or the directory it is a prefix of, or None: one
        Head that also reports a prefix (the client's kind)."""
        client = await self._gateway()
        found = await client.kind(key)
        if found is None:
            return None
        if found.object is not None:
            return file_entry(found.object)
        return directory_entry(key)

    async def _has_entries(self, key: str) -> bool:
        """Whether a key continues `key` with "/": a listing of one entry."""
        client = await self._gateway()
        # The listing is an async generator: closed here, not left to the collector.
        pages = cast(
            AsyncGenerator[ListPage, None],
            client.list_pages(f"{key}/", delimiter="/", page_size=1),
        )
        async with contextlib.aclosing(pages):
            page = await anext(pages, None)
        return page is not None and bool(page.objects or page.prefixes)

    async def _isdir(self, path: str) -> bool:
        """One lookup; a listing too only where an object is named `key` (it
        wins over the prefix in the lookup's answer, and may also be one)."""
        key = strip_url(path)
        if not key:
            return True
        with contextlib.suppress(OSError), os_errors(path):
            found = await (await self._gateway()).kind(key)
            if found is None or found.kind == "prefix":
                return found is not None
            return await self._has_entries(key)
        return False

    async def _info(self, path: str, **kwargs: Any) -> Entry:
        key = strip_url(path)
        if not key:
            return directory_entry("")
        with os_errors(path):
            entry = await self._lookup(key)
        if entry is None:
            raise FileNotFoundError(errno.ENOENT, f"no object or directory {key}", path)
        return entry

    async def _ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        key = strip_url(path)
        client = await self._gateway()
        entries: list[Entry] = []
        with os_errors(path):
            pages = client.list_pages(f"{key}/" if key else "", delimiter="/")
            async for page in pages:
                entries += [directory_entry(prefix) for prefix in page.prefixes]
                entries += [file_entry(info) for info in page.objects]
            if not entries and key:
                # A file lists as itself; nothing at all is an error.
                try:
                    entries = [file_entry(await client.head(key))]
                except errors.ObjectNotFound:
                    missing = f"no such directory {key}"
                    raise FileNotFoundError(errno.ENOENT, missing, path) from None
        entries.sort(key=lambda entry: str(entry["name"]))
        return entries if detail else [entry["name"] for entry in entries]

    async def _find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Every object under `path` in one flat listing (not a walk of its
        directories), with the directories their keys imply when withdirs."""
        if maxdepth is not None:
            return await super()._find(
                path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs
            )
        key = strip_url(path)
        client = await self._gateway()
        found: dict[str, Entry] = {}
        with os_errors(path):
            async for info in client.list(f"{key}/" if key else ""):
                found[info.key] = file_entry(info)
                if withdirs:
                    for directory in parents_between(key, info.key):
                        found.setdefault(directory, directory_entry(directory))
            if withdirs and key and found:
                found[key] = directory_entry(key)
            if not found and key:
                with contextlib.suppress(errors.ObjectNotFound):
                    found[key] = file_entry(await client.head(key))
        names = sorted(found)
        return {name: found[name] for name in names} if detail else names

    async def _mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing to make: a directory exists while a key is under it."""

    async def _makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing to make, as for _mkdir."""

    # ------------------------------------------------------------ reading

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        size = (await self._info(path))["size"] if needs_size(start, end) else None
        offset, length = read_window(start, end, size)
        return await self._read(path, strip_url(path), offset, length, None)

    async def _read_range(self, path: str, start: int, end: int, generation: int | None) -> bytes:
        """Bytes [start, end) of generation `generation` (GatewayFile's blocks)."""
        return await self._read(path, strip_url(path), start, max(0, end - start), generation)

    async def _read(
        self, path: str, key: str, offset: int, length: int | None, generation: int | None
    ) -> bytes:
        client = await self._gateway()
        with os_errors(path):
            try:
                return await client.get_bytes(
                    key, offset=offset, length=length, if_generation_match=generation
                )
            except errors.InvalidRange:
                return b""  # a range past the end is empty, as in a file

    async def _get_file(
        self, rpath: str, lpath: str, callback: Callback = DEFAULT_CALLBACK, **kwargs: Any
    ) -> None:
        key = strip_url(rpath)
        client = await self._gateway()
        try:
            with os_errors(rpath):
                info = await client.download_file(key, lpath, progress=callback.absolute_update)
        except FileNotFoundError:
            if not await self._isdir(rpath):
                raise
            os.makedirs(lpath, exist_ok=True)  # a directory, as the tree has it
            return
        callback.set_size(info.size)

    # ------------------------------------------------------------ writing

    async def _pipe_file(
        self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any
    ) -> None:
        if self._intrans:  # committed or discarded with the transaction's files
            creating = mode == "create"
            written = await defer_pipe(self, strip_url(path), value, creating)
            self.transaction.files.append(written)
            return
        await self._put_whole(path, value, creating=mode == "create")

    async def _put_file(
        self,
        lpath: str,
        rpath: str,
        callback: Callback = DEFAULT_CALLBACK,
        mode: str = "overwrite",
        **kwargs: Any,
    ) -> None:
        local = await asyncio.to_thread(os.stat, lpath)
        if stat.S_ISDIR(local.st_mode):
            return  # directories are implied by the keys put under them
        callback.set_size(local.st_size)
        creating = mode == "create"
        if self._intrans:  # sent now, committed or discarded with the transaction
            key, progress = strip_url(rpath), callback.absolute_update
            put = await defer_put(self, lpath, key, creating, progress)
            self.transaction.files.append(put)
            return
        client = await self._gateway()
        with os_errors(rpath, creating=creating):
            await client.put_file(
                strip_url(rpath),
                lpath,
                if_none_match="*" if creating else None,
                progress=callback.absolute_update,
            )

    async def _cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """A server-side Copy: the bytes do not come through here."""
        client = await self._gateway()
        with os_errors(path1):
            await client.copy(strip_url(path1), strip_url(path2))

    # ------------------------------------------------------------ deleting

    async def _rm_file(self, path: str, **kwargs: Any) -> None:
        client = await self._gateway()
        with os_errors(path):
            existed = await client.delete(strip_url(path))
        if not existed:
            raise FileNotFoundError(errno.ENOENT, f"no object {strip_url(path)}", path)

    async def _rm(
        self,
        path: str | list[str],
        recursive: bool = False,
        batch_size: int | None = None,
        maxdepth: int | None = None,
        **kwargs: Any,
    ) -> None:
        names = await self._expand_path(path, recursive=recursive, maxdepth=maxdepth)
        keys = {strip_url(name) for name in names}
        # A name some other name continues with "/" is a directory: no key to delete.
        directories = {parent for key in keys for parent in parents_between("", key)}
        await self._delete_many(sorted(keys - directories))

    async def _delete_many(self, keys: list[str]) -> None:
        """Delete every key (those missing already too): one DeleteObjects per
        1,000 keys. A key the gateway refused raises its OSError, naming the
        key, once every key was tried (the first such, in the keys' order)."""
        if not keys:
            return
        client = await self._gateway()
        with os_errors(keys[0]):  # the call failed as a whole (BucketNotFound...)
            results = await client.delete_many(keys)
        for result in results:
            if result.error is not None:
                raise as_os_error(result.error, result.key) from result.error
