"""A local reader's encoded() chunks: read and encoded in one worker-thread
hop, they are the chunks() a Get would send, each passed through encode."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from gateway.backends.local import io as local_io
from gateway.backends.local.backend import LocalBackend
from gateway.domain.objects import Conditions
from tests.drivers import put

SIZE = local_io.READ_PREFETCH * 3 + 12345


def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@pytest.mark.parametrize(
    ("offset", "limit", "chunk_size"),
    [
        (0, None, 100_000),  # the prefetch, then reads
        (0, None, 1 << 20),  # one chunk past the prefetch
        (5, 1000, 300),  # within the prefetch only
        (local_io.READ_PREFETCH + 7, None, 65_536),  # reads only
        (-10, None, 4),  # the tail
    ],
)
async def test_encoded_chunks_are_the_chunks_encoded(
    tmp_path: Path, offset: int, limit: int | None, chunk_size: int
) -> None:
    backend = LocalBackend(tmp_path)
    data = os.urandom(SIZE)
    await put(backend, "k", data, chunk=1 << 20)
    plain = await backend.open_read("k", offset, limit, Conditions())
    encoding = await backend.open_read("k", offset, limit, Conditions())
    try:
        chunks = [chunk async for chunk in plain.chunks(chunk_size)]
        encoded = [item async for item in encoding.encoded(chunk_size, digest)]
    finally:
        await plain.close()
        await encoding.close()
    assert encoded == [(digest(chunk), len(chunk)) for chunk in chunks]
    start = offset if offset >= 0 else SIZE + offset
    end = SIZE if limit is None else start + limit
    assert b"".join(chunks) == data[start:end]


async def test_a_closed_reader_encodes_nothing_more(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    await put(backend, "k", os.urandom(SIZE), chunk=1 << 20)
    reader = await backend.open_read("k", 0, None, Conditions())
    items = reader.encoded(local_io.READ_PREFETCH, digest)
    first = await anext(items)
    await reader.close()
    assert first[1] == local_io.READ_PREFETCH
    assert [item async for item in items] == []
