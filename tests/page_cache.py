"""How much of a file the kernel's page cache holds dirty (written, not yet
on its way to disk), from the cachestat system call (Linux 6.5 and later):
for the tests of the write-back that the local backend and the client's
downloads start as they write."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from pathlib import Path

import pytest

# cachestat's number, the same on the architectures that share the generic
# system call table.
_CACHESTAT = {"x86_64": 451, "aarch64": 451}.get(platform.machine())
_PAGE = os.sysconf("SC_PAGE_SIZE")


class _Range(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Stat(ctypes.Structure):
    _fields_ = [
        ("nr_cache", ctypes.c_uint64),
        ("nr_dirty", ctypes.c_uint64),
        ("nr_writeback", ctypes.c_uint64),
        ("nr_evicted", ctypes.c_uint64),
        ("nr_recently_evicted", ctypes.c_uint64),
    ]


def dirty_bytes(path: str | os.PathLike[str]) -> int:
    """The bytes of the file at path that are dirty in the page cache."""
    if _CACHESTAT is None or not sys.platform.startswith("linux"):
        raise OSError("cachestat is not known on this platform")
    libc = ctypes.CDLL(None, use_errno=True)
    stat = _Stat()
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syscall(_CACHESTAT, fd, ctypes.byref(_Range(0, 0)), ctypes.byref(stat), 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
    finally:
        os.close(fd)
    return int(stat.nr_dirty) * _PAGE


def dirty_when_left_alone(directory: Path, size: int) -> int:
    """Write size bytes to a new file in directory with nothing else done,
    and return how many of them are dirty: the control of a write-back test.
    Skips the test where that cannot be seen (no cachestat, or a file system
    such as tmpfs that keeps no pages to write back)."""
    control = directory / "control.bin"
    control.write_bytes(os.urandom(size))
    try:
        dirty = dirty_bytes(control)
    except OSError as error:
        pytest.skip(f"no page-cache figures here: {error}")
    finally:
        control.unlink()
    if dirty < size // 2:
        pytest.skip(f"{directory}'s file system shows no dirty pages for a fresh write")
    return dirty
