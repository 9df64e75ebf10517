"""The dedup bench section runs end to end at a tiny size: a real gateway
with a plain and a dedup bucket, identical Puts to each (the dedup bucket's
bytes on disk those of one object, and a little), big Puts and Gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import procs
from bench.dedup import DedupSection
from bench.options import parse_args

pytestmark = pytest.mark.timeout(120)


def test_the_dedup_section_runs(processes: procs.Processes, tmp_path: Path) -> None:
    args = parse_args(
        ["--only", "dedup", "--size", "256KiB", "--dedup-count", "40", "--dedup-file-size", "64KiB"]
    )
    section = DedupSection(args, processes, tmp_path, [])
    section.run()
    assert section.failed == []
    many = {row.bucket: row for row in section.many}
    assert many["plain"].disk_bytes >= 40 * 64 * 1024
    # One copy of the bytes, and a small reference file per key.
    assert many["dedup"].disk_bytes < many["plain"].disk_bytes / 4
    assert many["dedup, SHA-256 promised"].disk_bytes < many["plain"].disk_bytes / 4
    assert [row.bucket for row in section.rows] == ["plain", "dedup"]
    assert "Dedup bucket against a plain one" in section.render()
