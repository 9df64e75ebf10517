"""The whole object's CRC32C combined from its chunks' equals one pass over it."""

from __future__ import annotations

import os

import google_crc32c
import pytest

from gateway.domain.checksums import COMBINE_FROM, StreamChecksums
from gateway.domain.crc32c_combine import crc32c_combine


def crc(data: bytes) -> int:
    return int(google_crc32c.value(data))


@pytest.mark.parametrize("sizes", [(0, 5), (5, 0), (1, 1), (3, 1000), (7, 65536), (100, 1 << 20)])
def test_combine_equals_the_crc_of_the_concatenation(sizes: tuple[int, int]) -> None:
    first, second = os.urandom(sizes[0]), os.urandom(sizes[1])
    assert crc32c_combine(crc(first), crc(second), len(second)) == crc(first + second)


def test_stream_checksums_with_known_chunk_crcs_match_a_single_pass() -> None:
    chunks = [os.urandom(n) for n in (10, COMBINE_FROM, COMBINE_FROM + 3, 1 << 20, 17)]
    combined, single = StreamChecksums(), StreamChecksums()
    for chunk in chunks:
        combined.update(chunk, crc(chunk))
        single.update(chunk)
    whole = b"".join(chunks)
    assert combined.crc32c == single.crc32c == crc(whole)
    assert combined.sha256 == single.sha256
    assert combined.size == single.size == len(whole)


def test_a_wrong_known_chunk_crc_shows_in_the_whole_object_crc() -> None:
    # The known CRC is trusted (the chunk was checked against it): a wrong one
    # must not go unnoticed in the result, so the object check then fails.
    chunk = os.urandom(COMBINE_FROM)
    sums = StreamChecksums()
    sums.update(chunk, crc(chunk) ^ 1)
    assert sums.crc32c != crc(chunk)
