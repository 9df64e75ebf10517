"""Standard input as the source of `storagegw put -`, read so that the
command can stop the reading when the upload ends early.

gRPC reads a Put's request iterator, and so the upload source, on a daemon
thread of its own. Read through sys.stdin.buffer, that thread holds the
BufferedReader's lock for the whole of each read(), the GIL released while
it waits in read(2). When the gateway refuses the upload from its first
message (a bad key, an unknown bucket) or Ctrl-C stops it, the main thread
returns and the interpreter finalizes while that read may be under way:
the thread, still in read(2) or unable to take the GIL back once
finalization has begun, never releases the lock, and closing sys.stdin
then gives up after a second and aborts the process ("Fatal Python
error: _enter_buffered_busy: could not acquire lock for
<_io.BufferedReader name='<stdin>'> at interpreter shutdown") with SIGABRT
instead of the command's exit code. A pipe that stays open and empty
makes this certain; a short stdin only now and then.

StdinReader reads the descriptor itself, never through the buffered
object, and waits in poll() on both it and a wake-up pipe: close(), called
by the main thread once the upload is over, ends a read under way and
returns only when no thread is reading stdin any more.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import threading
from collections.abc import Iterator
from typing import BinaryIO

from storagegw._common import BinaryReader

__all__ = ["StdinReader", "stdin_source"]

# What one os.read may take when read(size) is called without a size.
_READ_ALL_STEP = 1024 * 1024


class StdinReader:
    """Reads a pipe, terminal or socket descriptor (left open: not ours)
    until close(), which any thread may call while another is reading."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._closed = False
        self._reading = threading.Lock()  # held for the whole of each read()
        self._wake_read, self._wake_write = os.pipe()
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._poll.register(self._wake_read, select.POLLIN)

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes (all, if negative), fewer only at the end of
        input, as BufferedReader.read gives them; ValueError once closed."""
        with self._reading:
            parts: list[bytes] = []
            got = 0
            while size < 0 or got < size:
                self._wait_readable()
                part = os.read(self._fd, size - got if size >= 0 else _READ_ALL_STEP)
                if not part:
                    break
                parts.append(part)
                got += len(part)
            return b"".join(parts)

    def close(self) -> None:
        """Stop reading: a read under way raises ValueError; returns once it has."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_write, b"\0")  # wakes a read waiting in poll()
        with self._reading:
            self._poll.unregister(self._wake_read)
            os.close(self._wake_read)
            os.close(self._wake_write)

    def _wait_readable(self) -> None:
        """Return when os.read on the descriptor will not block (data, end
        of input or an error to report), or raise ValueError once closed."""
        while True:
            if self._closed:
                raise ValueError("read of closed file")  # as io says it
            ready = {fd for fd, _ in self._poll.poll()}
            if self._fd in ready and not self._closed:
                return


@contextlib.contextmanager
def stdin_source(stdin: BinaryIO) -> Iterator[BinaryReader]:
    """`stdin` to upload from, read by a StdinReader closed at the end of the
    block when it is a pipe, terminal or socket. A regular file (`< FILE`)
    is passed on as it is: its reads never wait, and being seekable it may
    go as a resumable upload. Nothing may have read from `stdin` before:
    the StdinReader does not see what the buffered object holds."""
    try:
        fd = stdin.fileno()
        waits = not stat.S_ISREG(os.fstat(fd).st_mode)
    except (OSError, ValueError):  # no descriptor (a replaced sys.stdin)
        waits = False
    if not waits or not hasattr(select, "poll"):  # poll: not on Windows
        yield stdin
        return
    reader = StdinReader(fd)
    try:
        yield reader
    finally:
        reader.close()
