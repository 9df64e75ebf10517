"""The local backend's object readers and writers.

Thread hops (asyncio.to_thread) cost more than the I/O of a small object, so
both sides keep small objects in memory and do their file work in as few
hops as possible:

- A LocalWriter buffers data until WRITE_BUFFER_LIMIT. An object that stays
  under it gets its temp file at commit, in the commit's one thread hop,
  created whole (final header, then data) and fsynced once; aborting it costs
  nothing. Past the limit, one hop creates the temp file with a placeholder
  header and the buffered data, and the rest is appended as it arrives;
  commit writes the final header over the placeholder and fsyncs once.
- A LocalReader is opened together with a read of the first READ_PREFETCH
  bytes of its range. When that is the whole range the file is closed in the
  same hop, so a small Get is one hop and the reader holds no fd; otherwise
  the fd pins the generation opened, whatever happens to the key afterwards,
  and the rest is read with pread in worker threads.

A writer's temp file is made by temp_files.create_temp, flocked for as long
as the writer has it (see there).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Protocol, TypeVar

from gateway.backends.base import Encoded, RangeReader, encode_off_loop
from gateway.backends.local.format import (
    Header,
    encode_header,
    header_block,
    pread_exact,
    pwrite_all,
    reserved_header_len,
    storage_errors,
    write_all,
)
from gateway.backends.local.temp_files import create_temp
from gateway.backends.local.writeback import Writeback
from gateway.backends.observer import StoreObserver, timed_fsync
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Checksums, ObjectMeta, WriteOptions

# A write is kept in memory up to this size, so that a small object costs a
# single thread hop (at commit) instead of one per step. It bounds the memory
# each writer adds to the up to two chunks (1 MiB each by default) the gateway
# already holds per upload; bigger objects stream to disk as before, where a
# few hops more are noise next to their I/O.
WRITE_BUFFER_LIMIT = 256 * 1024
# open_read reads this much of the range in the hop that opens the file, so
# a small Get is a single hop; same size and memory reasoning as above.
READ_PREFETCH = 256 * 1024

Piece = TypeVar("Piece")


async def _as_read(data: bytes) -> tuple[bytes, int]:
    return data, len(data)


def _truncated(key: str) -> GatewayError:
    return GatewayError(
        Reason.INTERNAL, f"local backend: object {key!r} is shorter than its header says"
    )


class LocalReader(RangeReader):
    """A range of an object, pinned to the generation it was opened at: by
    the open fd, or, once the whole range is prefetched, by those bytes."""

    def __init__(
        self, fd: int | None, header: Header, start: int, end: int, prefetched: bytes
    ) -> None:
        super().__init__(header.meta, start, end)
        self._fd = fd  # None once closed, or when the whole range is in prefetched
        self._data_offset = header.data_offset
        self._prefetched = prefetched  # the range's first bytes
        # Held by every thread using the fd: close waits for a read in flight
        # (one whose await was cancelled included) before the fd can be reused.
        self._lock = threading.Lock()

    @classmethod
    def open(cls, fd: int, header: Header, start: int, end: int) -> LocalReader:
        """The reader of [start, end) of the object file open on fd, which it
        takes over, closing it at once when the prefetch covers the whole
        range, or on error (blocking)."""
        try:
            wanted = min(READ_PREFETCH, end - start)
            prefetched = pread_exact(fd, wanted, header.data_offset + start)
            if len(prefetched) < wanted:
                raise _truncated(header.meta.key)
        except BaseException:
            os.close(fd)
            raise
        if wanted == end - start:
            os.close(fd)
            return cls(None, header, start, end, prefetched)
        return cls(fd, header, start, end, prefetched)

    def held(self) -> bytes | None:
        if self._fd is None and len(self._prefetched) == self._end - self._start:
            return self._prefetched  # the whole range, read when opened
        return None

    def read_at(self, size: int, position: int) -> bytes:
        """Up to size bytes of the object's data from position (blocking);
        b"" once closed."""
        with self._lock:
            if self._fd is None:
                return b""
            return pread_exact(self._fd, size, self._data_offset + position)

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        async for data, _ in self._pieces(chunk_size, _as_read, self._read_sized):
            yield data

    async def encoded(
        self, chunk_size: int, encode: Callable[[bytes], Encoded]
    ) -> AsyncIterator[tuple[Encoded, int]]:
        # chunks() with each chunk read and encoded in one thread hop, not two.
        async def from_memory(data: bytes) -> tuple[Encoded, int]:
            return await encode_off_loop(encode, data), len(data)

        def from_file(size: int, position: int) -> tuple[Encoded, int] | None:
            data = self.read_at(size, position)
            return (encode(data), len(data)) if data else None

        async for piece in self._pieces(chunk_size, from_memory, from_file):
            yield piece

    async def _pieces(
        self,
        chunk_size: int,
        from_memory: Callable[[bytes], Awaitable[tuple[Piece, int]]],
        from_file: Callable[[int, int], tuple[Piece, int] | None],
    ) -> AsyncIterator[tuple[Piece, int]]:
        """The range in chunk_size steps, each made (with the number of the
        object's bytes it holds) from the prefetched bytes on the loop, or
        by from_file(size, position) in a worker thread (None: no bytes)."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        position = self._start
        while position < self._end:
            size = min(chunk_size, self._end - position)
            skip = position - self._start
            if skip < len(self._prefetched):
                piece: tuple[Piece, int] | None = await from_memory(
                    self._prefetched[skip : skip + size]
                )
            else:
                piece = await asyncio.to_thread(from_file, size, position)
            if piece is None:
                if self._fd is None:
                    return  # closed meanwhile
                raise _truncated(self._meta.key)
            position += piece[1]
            yield piece

    def _read_sized(self, size: int, position: int) -> tuple[bytes, int] | None:
        """read_at's bytes with their size; None if there were none."""
        data = self.read_at(size, position)
        return (data, len(data)) if data else None

    def _close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    async def close(self) -> None:
        self._prefetched = b""
        if self._fd is not None:
            await asyncio.shield(asyncio.to_thread(self._close))


class Finishable(Protocol):
    """What the backend's commit installs: a LocalWriter, or a resumable
    upload's data file (local_uploads)."""

    @property
    def key(self) -> str: ...

    @property
    def options(self) -> WriteOptions: ...

    @property
    def size(self) -> int: ...

    def finish(self, meta: ObjectMeta) -> str:
        """Give the file its final header, fsync it; its path (blocking)."""

    def release(self) -> None:
        """The file was installed as the key (blocking)."""


# The backend's commit: (writer, crc32c, sha256) -> metadata of the new object.
Committer = Callable[[Finishable, int | None, bytes | None], Awaitable[ObjectMeta]]


class LocalWriter:
    """An object being written: in memory while small, then in a temp file in
    root/tmp, which the backend's commit installs as the key."""

    def __init__(
        self,
        commit: Committer,
        key: str,
        options: WriteOptions,
        tmp_dir: str,
        observer: StoreObserver | None = None,
    ) -> None:
        self._commit = commit
        self._observer = observer  # told of the file's fsync
        self._key = key
        self._options = options
        self._tmp_dir = tmp_dir
        self._buffer = bytearray()  # data not in the temp file (yet)
        self._size = 0
        # Once set, data goes to the temp file, never to the buffer again: set
        # before the thread hop that creates the file, so a later write cannot
        # slip into the buffer while that hop is still running.
        self._to_disk = False
        self._done = False  # committed or aborted
        # The temp file. It is only created, written or closed by a thread
        # holding _lock, and never once _closed is set.
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._tmp_path = ""
        self._header_len = 0  # the header's JSON room, once a placeholder is written
        self._writeback = Writeback()
        self._closed = False

    @property
    def key(self) -> str:
        return self._key

    @property
    def options(self) -> WriteOptions:
        return self._options

    @property
    def size(self) -> int:
        return self._size

    def _create_file(self, header: bytes) -> int:
        """Create the temp file holding header then the buffered data; its fd
        (blocking, _lock held)."""
        fd, path = create_temp(self._tmp_dir)
        try:
            write_all(fd, header)
            write_all(fd, self._buffer)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        self._fd, self._tmp_path, self._buffer = fd, path, bytearray()
        return fd

    def _write(self, data: bytes) -> None:
        """Append data to the temp file, created first if need be (blocking)."""
        with self._lock:
            if self._closed:
                raise GatewayError(Reason.INTERNAL, "local backend: write after abort")
            fd = self._fd
            if fd is None:
                options = self._options
                self._header_len = reserved_header_len(options.content_type, dict(options.metadata))
                fd = self._create_file(header_block(b"", self._header_len))
            write_all(fd, data)
            self._writeback.wrote(fd, len(data))

    async def write(self, data: bytes) -> None:
        if self._done:
            raise GatewayError(Reason.INTERNAL, "write after the writer was committed or aborted")
        if not data:
            return
        if not self._to_disk and len(self._buffer) + len(data) <= WRITE_BUFFER_LIMIT:
            self._buffer += data  # a copy: the caller may reuse its buffer
        else:
            self._to_disk = True
            with storage_errors(self._key):
                await asyncio.to_thread(self._write, data)
        self._size += len(data)

    def finish(self, meta: ObjectMeta) -> str:
        """Make the temp file hold the final object, header and data, and
        fsync it: the write's one file fsync, after its last byte. Returns
        the file's path, for the backend to install (blocking)."""
        doc = encode_header(meta)
        with self._lock:
            if self._closed:
                raise GatewayError(Reason.INTERNAL, "local backend: commit after abort")
            fd = self._fd
            if fd is None:
                # All in memory still: written whole, so the header needs no
                # room to grow.
                fd = self._create_file(header_block(doc, len(doc)))
            else:
                pwrite_all(fd, header_block(doc, self._header_len), 0)
            timed_fsync(self._observer, fd, self._tmp_path)
            return self._tmp_path

    def release(self) -> None:
        """Close the temp file once the backend installed it as the key
        (blocking). Not before: its flock guards it until then."""
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self._tmp_path = ""

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        if self._done:
            raise GatewayError(Reason.INTERNAL, "commit after the writer was committed or aborted")
        try:
            return await self._commit(self, checksums.crc32c, checksums.sha256)
        finally:
            # Committed, it has no file left: closed here, without abort()'s task.
            if not self._done and not self._close_without_file():
                await asyncio.shield(self.abort())
            self._done = True

    def _discard(self) -> None:
        with self._lock:
            self._closed = True
            self._buffer = bytearray()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._tmp_path:
                with suppress(FileNotFoundError):
                    os.unlink(self._tmp_path)
                self._tmp_path = ""

    def _close_without_file(self) -> bool:
        """Close the writer on the event loop if it has no temp file to
        remove (none made, or installed already); whether it did."""
        # A held lock means a thread is (maybe) creating or using the file;
        # otherwise, once _closed is set no thread will create one.
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._fd is not None:
                return False
            self._closed = True
            self._buffer = bytearray()
            return True
        finally:
            self._lock.release()

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if not self._close_without_file():
            await asyncio.to_thread(self._discard)
