"""Local file handling for uploads and downloads, as blocking calls.

Flows yield them as Blocking effects: the sync client calls them directly,
the async client in a worker thread, so both treat files the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

from storagegw._common import BinaryReader, guess_content_type, source_path
from storagegw._crc32c import Buffer

__all__ = ["DownloadTarget", "OpenedSource", "open_path", "open_source", "read_block"]

_TEMP_ATTEMPTS = 100

# A download starts the write-back of what it wrote at every this many bytes
# (see DownloadTarget.write_at).
WRITEBACK_AFTER = 8 * 1024 * 1024


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range, on Linux; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # start writing the range's dirty pages, wait for none


@dataclass(frozen=True)
class OpenedSource:
    """An upload source ready to read: its blocks and what is known about it."""

    blocks: Iterable[bytes]
    content_type: str | None
    size: int | None


def open_path(
    path: str, content_type: str | None, size: int | None
) -> tuple[BinaryIO, str | None, int | None]:
    """Open a file to upload; fill in the content type and size it implies."""
    file = open(path, "rb")  # noqa: SIM115  # the caller closes it
    try:
        if size is None:
            size = os.fstat(file.fileno()).st_size
        if content_type is None:
            content_type = guess_content_type(path)
    except BaseException:
        file.close()
        raise
    return file, content_type, size


def read_block(file: BinaryReader, block_size: int) -> bytes:
    data = file.read(block_size)
    if not isinstance(data, bytes | bytearray | memoryview):
        # Text files give str; non-blocking ones give None when empty.
        raise TypeError(f"upload source read() returned {type(data).__name__}, not bytes")
    return bytes(data) if not isinstance(data, bytes) else data


def iter_blocks(file: BinaryReader, block_size: int) -> Iterator[bytes]:
    while block := read_block(file, block_size):
        yield block


@contextlib.contextmanager
def open_source(
    source: object, block_size: int, content_type: str | None, size: int | None
) -> Iterator[OpenedSource]:
    """Make any supported upload source an iterable of byte blocks."""
    path = source_path(source)
    if path is not None:
        file, content_type, size = open_path(path, content_type, size)
        with file:
            yield OpenedSource(iter_blocks(file, block_size), content_type, size)
    elif isinstance(source, bytes | bytearray | memoryview):
        yield OpenedSource([bytes(source)], content_type, len(source) if size is None else size)
    elif hasattr(source, "read"):
        reader = cast(BinaryReader, source)
        yield OpenedSource(iter_blocks(reader, block_size), content_type, size)
    elif isinstance(source, Iterable):
        yield OpenedSource(source, content_type, size)
    else:
        raise TypeError(f"cannot upload from {type(source).__name__}")


class DownloadTarget:
    """A temporary file beside the destination, renamed over it when complete.

    Created with the usual permissions (0666 less the umask), unlike
    tempfile's private 0600, since it becomes the user's file. Written in
    place at each chunk's offset (a parallel download writes its ranges from
    several threads at once); commit() and discard() wait for writes under
    way, so that no late write of an abandoned range can reach a closed (and
    perhaps reused) file descriptor.

    Written bytes only fill the page cache, and Linux would write a GiB of
    them back at the final fsync, all at once (about half a second on the
    development machine). So every WRITEBACK_AFTER bytes the target asks the
    kernel to start writing what is dirty (sync_file_range, a hint that waits
    for nothing; the fsync still makes the file durable and reports errors):
    the disk works while the rest arrives.
    """

    def __init__(self, dest_path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(dest_path)
        directory, name = os.path.split(os.path.abspath(self.path))
        self.directory = directory
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        for _ in range(_TEMP_ATTEMPTS):
            temp_path = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.part")
            try:
                fd = os.open(temp_path, flags, 0o666)
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(f"could not create a temporary file in {directory}")
        self.temp_path = temp_path
        self._fd = fd
        self._closed = False
        self._writing = 0
        self._idle = threading.Condition()
        self.written = 0
        self._written_back = 0  # self.written when write-back last started

    def allocate(self, size: int) -> None:
        """Reserve `size` bytes on disk, so that writes in place at any
        offset do not fragment the file (or fail half-way for want of space)."""
        if size <= 0:
            return
        try:
            os.posix_fallocate(self._fd, 0, size)
        except (AttributeError, OSError):
            os.ftruncate(self._fd, size)  # a file system without fallocate

    def write_at(self, offset: int, data: Buffer) -> int:
        """Write `data` at `offset`; the bytes written so far, in all."""
        with self._idle:
            if self._closed:
                raise ValueError("write to a download target already closed")
            self._writing += 1
        try:
            view = memoryview(data)
            while view:
                done = os.pwrite(self._fd, view, offset)
                view, offset = view[done:], offset + done
            with self._idle:
                self.written += len(data)
                written = self.written
                write_back = written - self._written_back >= WRITEBACK_AFTER
                if write_back:
                    self._written_back = written
            if write_back and _SYNC_FILE_RANGE is not None:
                _SYNC_FILE_RANGE(self._fd, 0, 0, _SYNC_FILE_RANGE_WRITE)
        finally:
            with self._idle:
                self._writing -= 1
                self._idle.notify_all()
        return written

    def _close(self) -> None:
        """Close the file once no write is under way (none starts after)."""
        with self._idle:
            if self._closed:
                return
            self._closed = True
            self._idle.wait_for(lambda: self._writing == 0)
        os.close(self._fd)

    def commit(self) -> None:
        """Flush the data to disk and move it into place."""
        os.fsync(self._fd)
        self._close()
        os.replace(self.temp_path, self.path)
        # Make the rename itself durable; not every platform can open a directory.
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_path)
