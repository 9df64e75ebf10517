"""The local backend's object readers and writers.

A LocalReader holds an open object file: the fd pins the generation it was
opened at, whatever happens to the key afterwards. A LocalWriter appends to a
temp file in root/tmp and hands itself to the backend's commit, which writes
the final header and installs the file as the key. Blocking work runs in
worker threads, never on the event loop.

A writer holds an flock on its temp file for as long as it lives, so that
remove_temp_unless_locked, which a starting backend runs on the temp files
left behind by a crash, spares those of writes in flight in another process.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress

from gateway.backends.base import Checksums, ObjectMeta, WriteOptions
from gateway.backends.local_format import (
    PREFIX_LEN,
    Header,
    encode_header,
    placeholder_header,
    pread_exact,
    pwrite_all,
    reserved_header_len,
    storage_errors,
    write_all,
)
from gateway.errors import GatewayError, Reason

_FILE_MODE = 0o600


class LocalReader:
    """An open object file; the fd pins the generation it was opened at."""

    def __init__(self, fd: int, header: Header, start: int, end: int) -> None:
        self._fd = fd
        self._meta = header.meta
        self._data_offset = header.data_offset
        self._start = start
        self._end = end
        # Held by every thread using the fd: close waits for a read in flight
        # (one whose await was cancelled included) before the fd can be reused.
        self._lock = threading.Lock()
        self._closed = False

    @property
    def meta(self) -> ObjectMeta:
        return self._meta

    @property
    def start(self) -> int:
        return self._start

    @property
    def end(self) -> int:
        return self._end

    def read_at(self, size: int, position: int) -> bytes:
        """Up to size bytes of the object's data from position (blocking);
        b"" once closed."""
        with self._lock:
            if self._closed:
                return b""
            return pread_exact(self._fd, size, self._data_offset + position)

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        position = self._start
        while position < self._end:
            data = await asyncio.to_thread(
                self.read_at, min(chunk_size, self._end - position), position
            )
            if not data:
                if self._closed:
                    return
                raise GatewayError(
                    Reason.INTERNAL,
                    f"local backend: object {self._meta.key!r} is shorter than its header says",
                )
            position += len(data)
            yield data

    def _close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)

    async def close(self) -> None:
        if not self._closed:
            await asyncio.shield(asyncio.to_thread(self._close))


# The backend's commit: (writer, crc32c, sha256) -> metadata of the new object.
Committer = Callable[["LocalWriter", int | None, bytes], Awaitable[ObjectMeta]]


class LocalWriter:
    """A temp file in root/tmp that commit renames over the key."""

    def __init__(
        self,
        commit: Committer,
        key: str,
        options: WriteOptions,
        fd: int,
        tmp_path: str,
        header_len: int,
    ) -> None:
        self._commit = commit
        self._key = key
        self._options = options
        self._fd = fd
        self._tmp_path = tmp_path
        self._header_len = header_len
        self._size = 0
        self._lock = threading.Lock()  # held by every thread using the fd
        self._closed = False  # fd closed
        self._done = False  # committed or aborted

    @classmethod
    def create(
        cls, commit: Committer, key: str, options: WriteOptions, tmp_dir: str
    ) -> LocalWriter:
        """Create the temp file and its placeholder header (blocking)."""
        header_len = reserved_header_len(options.content_type, dict(options.metadata))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        while True:
            path = os.path.join(tmp_dir, secrets.token_hex(16) + ".tmp")
            try:
                fd = os.open(path, flags, _FILE_MODE)
                break
            except FileExistsError:
                continue
        try:
            # Best effort: a filesystem without flock only loses the guard
            # against another process's start() removing this file.
            with suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            write_all(fd, placeholder_header(header_len))
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        return cls(commit, key, options, fd, path, header_len)

    @property
    def key(self) -> str:
        return self._key

    @property
    def options(self) -> WriteOptions:
        return self._options

    @property
    def size(self) -> int:
        return self._size

    @property
    def tmp_path(self) -> str:
        return self._tmp_path

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._closed:
                raise GatewayError(Reason.INTERNAL, "local backend: write after abort")
            write_all(self._fd, data)

    async def write(self, data: bytes) -> None:
        if self._done:
            raise GatewayError(Reason.INTERNAL, "write after the writer was committed or aborted")
        if not data:
            return
        with storage_errors(self._key):
            await asyncio.to_thread(self._write, data)
        self._size += len(data)

    def write_header(self, meta: ObjectMeta) -> None:
        """Write the final header over the placeholder and fsync (blocking)."""
        doc = encode_header(meta)
        if len(doc) > self._header_len:
            raise GatewayError(Reason.INTERNAL, "local backend: header outgrew its reservation")
        with self._lock:
            if self._closed:
                raise GatewayError(Reason.INTERNAL, "local backend: commit after abort")
            pwrite_all(self._fd, doc + b" " * (self._header_len - len(doc)), PREFIX_LEN)
            os.fsync(self._fd)

    def fsync(self) -> None:
        with self._lock:
            if not self._closed:
                os.fsync(self._fd)

    def copy_from(self, source: LocalReader, position: int, size: int) -> int:
        """Append up to size bytes of source from position (blocking)."""
        data = source.read_at(size, position)
        self._write(data)
        self._size += len(data)
        return len(data)

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        if self._done:
            raise GatewayError(Reason.INTERNAL, "commit after the writer was committed or aborted")
        try:
            return await self._commit(self, checksums.crc32c, checksums.sha256)
        finally:
            await asyncio.shield(self.abort())

    def _discard(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)
        # After a commit the temp file is gone (renamed, or linked then
        # unlinked); after an abort it is removed here.
        with suppress(FileNotFoundError):
            os.unlink(self._tmp_path)

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        await asyncio.to_thread(self._discard)


def remove_temp_unless_locked(path: str) -> None:
    """Remove a leftover temp file unless a live writer holds its flock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        with suppress(OSError):
            os.unlink(path)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # a writer in another process is using it
    finally:
        os.close(fd)
    with suppress(FileNotFoundError):
        os.unlink(path)
