"""Starting the kernel's write of a Put's bytes to disk as they come.

A write to a file only fills the page cache; Linux writes those pages back
when they are 30 s old or when dirty memory passes a share of RAM, so for an
object of a GiB or less nothing reaches the disk before the commit's fsync,
which then waits for all of it at once (about half a second per GiB on the
development machine). Asking for the write-back of every few MiB as they are
written (sync_file_range with SYNC_FILE_RANGE_WRITE, as PostgreSQL's
*_flush_after and RocksDB's bytes_per_sync do) lets the disk work while the
rest streams in, and leaves the fsync little to wait for.

It is a hint, not a durability step: the commit's fsync still makes the bytes
durable and reports the errors. Where the call is missing (not Linux) or
refused (a file system without it), nothing is done. A resumable upload does
without it: its checkpoints already fsync its data every 32 MiB, in the
background.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

# New bytes a file collects before their write-back is started: the unit of
# a resumable upload's checkpoints. Every 8 MiB gained as much speed in 1 GiB
# Puts but cost the gateway about twice the extra CPU (0.24 s/GiB against 0.12).
WRITEBACK_AFTER = 32 * 1024 * 1024

_SYNC_FILE_RANGE_WRITE = 2


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_SYNC = _sync_file_range()


def start_writeback(fd: int) -> None:
    """Start writing every dirty page of the file on fd to disk, without
    waiting for it (blocking only while the device's queue is full). A
    failure is left for the fsync to report."""
    if _SYNC is not None:
        _SYNC(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


class Writeback:
    """Counts the bytes written to one file and starts their write-back at
    every WRITEBACK_AFTER of them. Not thread-safe: used under its writer's
    lock, in the thread doing the write."""

    def __init__(self) -> None:
        self._pending = 0  # bytes written since the last start

    def wrote(self, fd: int, size: int) -> None:
        self._pending += size
        if self._pending >= WRITEBACK_AFTER:
            self._pending = 0
            start_writeback(fd)
