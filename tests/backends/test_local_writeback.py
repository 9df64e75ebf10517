"""The local backend starts writing a Put's bytes to disk as they come
(writeback.py), so the commit's fsync has little left to wait for: the temp
file holds next to nothing dirty before commit, where the same bytes written
plainly stay dirty. (A resumable upload's checkpoints already fsync its data
every 32 MiB, in the background.)"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.backends.local.backend import LocalBackend
from gateway.backends.local.writeback import WRITEBACK_AFTER
from gateway.domain.objects import WriteOptions
from tests.drivers import get, sums
from tests.page_cache import dirty_bytes, dirty_when_left_alone

MiB = 1024 * 1024
SIZE = 2 * WRITEBACK_AFTER


async def test_a_put_is_on_its_way_to_disk_before_its_commit(tmp_path: Path) -> None:
    dirty_alone = dirty_when_left_alone(tmp_path, SIZE)
    backend = LocalBackend(tmp_path / "root")
    data = os.urandom(SIZE)
    writer = await backend.open_write("big.bin", WriteOptions())
    for position in range(0, SIZE, MiB):
        await writer.write(data[position : position + MiB])
    [name] = os.listdir(tmp_path / "root" / "tmp")
    dirty = dirty_bytes(tmp_path / "root" / "tmp" / name)
    assert dirty < WRITEBACK_AFTER < dirty_alone, (dirty, dirty_alone)
    meta = await writer.commit(sums(data))
    assert meta.size == SIZE
    assert await get(backend, "big.bin") == data
