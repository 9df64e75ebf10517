"""The mark of the tests that move GiBs of data: under pytest-xdist they run one after the other
on one worker (an xdist_group with `--dist loadgroup`, pyproject.toml), never beside one another.

Each holds GiBs in RAM or on the temporary disk while it runs: the replicas' 2 GiB per route in
Ceph's memstore OSD (RAM) plus 2 GiB of source files, 64 concurrent 64 MiB resumable uploads on
local disk and in moto's memory, 1 GiB objects in moto, Ceph and fake-gcs-server (which copies
what it holds on every chunk). Serially they never overlap; on two workers any two could, and the
run's peak memory and disk would be their sum rather than the largest one. The rest of the suite
runs beside them on the other workers.
"""

from __future__ import annotations

import pytest

BIG_DATA = pytest.mark.xdist_group("big-data")
