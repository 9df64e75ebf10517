"""Helpers of the compression tests: a compressed bucket over a driver whose
reads are counted, compressible and incompressible bodies."""

from __future__ import annotations

import json
import os
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from gateway.backends.base import Backend, ObjectReader
from gateway.backends.forwarding import ForwardingBackend, ForwardingReader
from gateway.domain.objects import Conditions, ObjectMeta
from gateway.layers.compression.backend import CompressingBackend
from gateway.layers.compression.settings import CompressionSettings
from tests.drivers import get

# Small frames, so that test-sized objects have many.
FRAME = 64 * 1024


def json_log(size: int, seed: int = 7) -> bytes:
    """size bytes of a JSON-lines log: compressible, not trivially."""
    rng = random.Random(seed)
    lines = []
    total = 0
    while total < size:
        line = (
            json.dumps(
                {
                    "ts": 1_700_000_000 + total,
                    "level": rng.choice(["info", "warn", "error"]),
                    "path": f"/api/v1/items/{rng.randrange(10_000)}",
                    "ms": rng.randrange(2_000),
                    "user": f"user-{rng.randrange(500)}",
                }
            ).encode()
            + b"\n"
        )
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def csv_rows(size: int) -> bytes:
    rows = b"".join(
        b"%d,item-%d,%d.%02d,EUR\n" % (i, i % 97, i % 1000, i % 100) for i in range(size)
    )
    return rows[:size]


def noise(size: int) -> bytes:
    return os.urandom(size)


class _CountedReader(ForwardingReader):
    def __init__(self, reader: ObjectReader, counter: ReadCounter) -> None:
        super().__init__(reader)
        self._counter = counter

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        async for chunk in self._reader.chunks(chunk_size):
            self._counter.fetched += len(chunk)
            yield chunk

    def held(self) -> bytes | None:
        return None  # every byte through chunks(), counted

    async def close(self) -> None:
        await self._reader.close()


class ReadCounter(ForwardingBackend):
    """A driver passing every call on, counting the stored bytes its readers hand out."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.fetched = 0

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        reader = await self._inner.open_read(key, offset, limit, conditions)
        return _CountedReader(reader, self)


def compressed(inner: Backend, **settings: Any) -> tuple[CompressingBackend, ReadCounter]:
    """A compressed bucket over inner (frames of FRAME bytes unless told), and its counter."""
    counter = ReadCounter(inner)
    options = {"frame_size": FRAME, **settings}
    return CompressingBackend(counter, CompressionSettings(**options)), counter


async def stored(inner: Backend, key: str) -> tuple[ObjectMeta, bytes]:
    """The object as the driver stores it: its metadata and bytes."""
    return await inner.head(key), await get(inner, key, chunk_size=1 << 20)


Reading = Callable[[int, int | None], Any]
