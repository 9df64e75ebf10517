"""Allocator settings for a process that streams 1 MiB buffers (glibc only).

glibc serves allocations of 128 KiB and more with fresh mmap()s and returns
them with munmap() when freed, so every chunk's buffers are page-faulted in
anew: the benchmark measured ~700 minor faults per MiB on Get, half the
gateway's CPU time in the kernel. Serving up to 4 MiB from the heap, keeping
4 MiB before trimming it, and two arenas (instead of 8 per core) lets those
buffers be reused while keeping the peak RSS bounded (see bench/).
Skipped when the operator set any MALLOC_* variable or GATEWAY_MALLOC_TUNING=0.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Mapping

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

SETTINGS = {
    _M_MMAP_THRESHOLD: 4 * 1024 * 1024,
    _M_TRIM_THRESHOLD: 4 * 1024 * 1024,
    _M_ARENA_MAX: 2,
}


def tune_malloc(env: Mapping[str, str]) -> bool:
    """Apply SETTINGS with mallopt(); whether they were applied."""
    if env.get("GATEWAY_MALLOC_TUNING", "1") == "0" or any(k.startswith("MALLOC_") for k in env):
        return False
    if not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
