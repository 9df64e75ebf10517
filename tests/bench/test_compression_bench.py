"""The compression section of `make bench` runs end to end at a tiny size:
both buckets, Put, Get and a resumable Put, the compressed one stored
smaller, and stored alike whichever way it was sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import procs
from bench.compression import CompressionSection, json_log
from bench.options import parse_args

pytestmark = pytest.mark.timeout(120)


def test_the_log_is_json_lines_of_the_size_asked() -> None:
    data = json_log(100_000)
    assert len(data) == 100_000
    assert data.startswith(b'{"ts":')
    assert data.count(b"\n") > 500


def test_compression_section_measures_both_buckets(
    processes: procs.Processes, tmp_path: Path
) -> None:
    args = parse_args(["--only", "compression", "--size", "3MiB", "--repeat", "2"])
    section = CompressionSection(args, processes, tmp_path, [])
    section.run()
    assert section.failed == []
    rows = {(row.variant, row.op): row for row in section.rows}
    ops = ("put", "get", "resumable-put")
    assert set(rows) == {(v, op) for v in ("plain", "zstd") for op in ops}
    assert all(row.size == 3 * 1024 * 1024 and row.seconds > 0 for row in rows.values())
    assert rows["zstd", "put"].stored < rows["plain", "put"].stored / 2
    # A resumable upload is stored in the same layout as a Put.
    assert rows["zstd", "resumable-put"].stored == rows["zstd", "put"].stored
    table = section.render()
    assert "| zstd | get |" in table
    assert section.as_json()[0]["bucket"] == "plain"
