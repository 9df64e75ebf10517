"""Allocator settings for a process that streams 1 MiB buffers (glibc only).

glibc serves allocations of 128 KiB and more with fresh mmap()s and returns
them with munmap() when freed, so every chunk's buffers are page-faulted in
anew: the benchmark measured ~700 minor faults per MiB on Get, half the
gateway's CPU time in the kernel. Serving up to 4 MiB from the heap, keeping
up to 32 MiB free at its top before trimming it, and one arena (instead of 8
per core) lets those buffers be reused while keeping the peak RSS bounded
(see bench/). One arena rather than two: with two, a burst of 2,000 streams
arriving at once left the heaps fragmented, and the gateway's peak RSS went
from 134 to 367 MiB run to run; with one it stayed within 135-213 MiB, at no
measured cost in CPU per MiB. 32 MiB rather than 4 before trimming: the
chunks in flight of a download in four parallel ranges (five Get streams,
about 15 MiB) came and went across a 4 MiB threshold, and every GiB sent
page-faulted 36,000-62,000 pages in again; with 32 MiB about 20, at the same
peak RSS.
Skipped when the operator set any MALLOC_* variable or GATEWAY_MALLOC_TUNING=0.

Freed memory inside the heaps is only given back from their top; after a
burst of streams the rest stays with the process. release_free_memory()
(malloc_trim) hands every free page back; gateway.core.stream_limits calls it once
the gateway has no stream left.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from collections.abc import Mapping

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

SETTINGS = {
    _M_MMAP_THRESHOLD: 4 * 1024 * 1024,
    _M_TRIM_THRESHOLD: 32 * 1024 * 1024,
    _M_ARENA_MAX: 1,
}


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None:
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_free_memory() -> bool:
    """Return the allocator's free pages to the OS (glibc's malloc_trim;
    blocking: it walks every heap); whether anything was released."""
    libc = _glibc()
    if libc is None:
        return False
    trim = libc.malloc_trim
    trim.argtypes = (ctypes.c_size_t,)
    return bool(trim(0))


def tune_malloc(env: Mapping[str, str]) -> bool:
    """Apply SETTINGS with mallopt(); whether they were applied."""
    if env.get("GATEWAY_MALLOC_TUNING", "1") == "0" or any(k.startswith("MALLOC_") for k in env):
        return False
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
