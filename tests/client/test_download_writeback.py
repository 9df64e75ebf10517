"""A download's temporary file starts going to disk as its ranges land
(DownloadTarget.write_at), so the final fsync has little left to wait for,
where the same bytes written plainly stay dirty until then."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from storagegw._files import WRITEBACK_AFTER, DownloadTarget
from tests.page_cache import dirty_bytes, dirty_when_left_alone

MiB = 1024 * 1024
SIZE = 4 * WRITEBACK_AFTER


def test_ranges_written_at_once_are_on_their_way_to_disk(tmp_path: Path) -> None:
    dirty_alone = dirty_when_left_alone(tmp_path, SIZE)
    data = os.urandom(SIZE)
    target = DownloadTarget(tmp_path / "out.bin")
    target.allocate(SIZE)
    # Four ranges, each from its own thread, as a parallel download writes them.
    quarter = SIZE // 4

    def write_range(start: int) -> None:
        for offset in range(start, start + quarter, MiB):
            target.write_at(offset, data[offset : offset + MiB])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write_range, range(0, SIZE, quarter)))
    assert target.written == SIZE
    dirty = dirty_bytes(target.temp_path)
    assert dirty < WRITEBACK_AFTER < dirty_alone, (dirty, dirty_alone)
    target.commit()
    assert (tmp_path / "out.bin").read_bytes() == data
