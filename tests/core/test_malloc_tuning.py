"""The gateway's allocator settings (gateway/core/tuning.py): freed chunk
buffers are kept for the next chunks instead of being handed back to the
kernel and faulted in again.

Each case runs in a process of its own (mallopt is process-wide): it applies
the tuning as `python -m gateway` does, then allocates, touches and frees a
working set of 1 MiB buffers twice, as the chunks of a few streams come and
go, and counts the page faults of the second round.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
# The chunks in flight of a download in four parallel ranges (five Get
# streams, three 1 MiB chunks each), rounded up.
WORKING_SET = 16

_ROUNDS = f"""
import ctypes, json, os, resource, sys
from gateway.core import tuning

env = json.loads(sys.argv[1])
applied = tuning.tune_malloc(env)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)

def one_round():
    buffers = [libc.malloc({MIB}) for _ in range({WORKING_SET})]
    for buffer in buffers:
        ctypes.memset(buffer, 1, {MIB})  # every page touched, as a received chunk is
    for buffer in buffers:
        libc.free(buffer)

one_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
one_round()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({{"applied": applied, "faults": faults}}))
"""

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="the tuning applies to glibc only",
)


def _second_round(env: dict[str, str]) -> tuple[bool, int]:
    """(whether the tuning was applied, page faults of the second round)."""
    # The child's own environment carries no MALLOC_* setting of the runner's.
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", _ROUNDS, json.dumps(env)],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    return bool(result["applied"]), int(result["faults"])


def test_freed_chunk_buffers_are_reused_without_faulting_them_in_again() -> None:
    applied, faults = _second_round({})
    assert applied
    # The working set is 4,096 pages; the few faults left are the
    # interpreter's own.
    assert faults < WORKING_SET * MIB // PAGE // 16, faults


@pytest.mark.parametrize(
    "env", [{"GATEWAY_MALLOC_TUNING": "0"}, {"MALLOC_ARENA_MAX": "2"}], ids=["off", "operator's"]
)
def test_glibc_defaults_fault_the_buffers_in_again(env: dict[str, str]) -> None:
    """Turned off, or left to the operator's MALLOC_* variables: glibc's
    defaults trim the freed buffers, and the next round faults most pages in
    again (what the tuning saves, measured the same way)."""
    applied, faults = _second_round(env)
    assert not applied
    assert faults > WORKING_SET * MIB // PAGE // 2, faults
