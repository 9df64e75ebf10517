"""The ingest pump on its own, without a front end: what it writes, hashes,
skips, settles and charges, the bounds it checks as bytes arrive, and the
byte budget it draws on; and the plain write that uses it, which checks a
spec only once its bucket and key are."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.backends.memory.backend import MemoryBackend
from gateway.core.buckets import Buckets
from gateway.core.ingest import Bounds, Expected, Pump, check_declared_size
from gateway.core.stream_limits import StreamLimits, current_budget
from gateway.core.writes import PutLimits, WriteSpec, write
from gateway.domain.checksums import StreamChecksums
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, WriteOptions


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class Sink:
    """A writer keeping what it is given."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.written.append(data)


def plain_pump(sink: Sink, bounds: Bounds | None = None) -> Pump[None]:
    sums = StreamChecksums()
    return Pump(sums, sink.write, sums.update, bounds or Bounds())


async def test_writes_and_hashes_every_chunk_in_order() -> None:
    sink = Sink()
    pump = plain_pump(sink)
    chunks = [os.urandom(100), b"", os.urandom(200_000), os.urandom(3)]
    await pump.run(body(*chunks))
    data = b"".join(chunks)
    assert b"".join(sink.written) == data
    assert b"" not in sink.written
    checksums = pump.verified(Expected(size=len(data), sha256=hashlib.sha256(data).digest()))
    assert checksums.size == len(data)
    assert checksums.sha256 == hashlib.sha256(data).digest()


async def test_skips_what_is_persisted_and_trims_the_chunk_across_it() -> None:
    # A resumable stream from offset 10 over an upload persisted up to 25:
    # the first chunk (10..20) is skipped, the second (20..30) trimmed to 25..30.
    sink = Sink()
    pump = plain_pump(sink)
    data = bytes(range(40))
    await pump.run(body(data[10:20], data[20:30], data[30:40]), start=10, skip_to=25)
    assert sink.written == [data[25:30], data[30:40]]
    assert pump.sums.size == 15


async def test_settle_gets_each_chunks_hash_once_both_are_done() -> None:
    sink = Sink()
    settled: list[int] = []
    charged: list[int] = []

    async def settle(size: int) -> None:
        # The chunk's write is done before its hash result is settled.
        assert sum(map(len, sink.written)) >= size
        settled.append(size)

    sums = StreamChecksums()

    def hash_chunk(data: bytes, crc: int | None) -> int:
        sums.update(data, crc)
        return sums.size

    pump = Pump(sums, sink.write, hash_chunk, Bounds(), settle=settle, charge=charged.append)
    await pump.run(body(b"a" * 5, b"b" * 7, b"c" * 11))
    assert settled == [5, 12, 23]
    assert charged == [5, 7, 11]


async def test_an_interrupted_pump_writes_nothing_more() -> None:
    sink = Sink()
    stop = False

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal stop
        yield b"first"
        stop = True
        yield b"second"

    sums = StreamChecksums()
    pump = Pump(sums, sink.write, sums.update, Bounds(), interrupted=lambda: stop)
    with pytest.raises(asyncio.CancelledError):
        await pump.run(chunks())
    await pump.drain()
    assert sink.written == [b"first"]


@pytest.mark.parametrize(
    ("bounds", "reason", "message"),
    [
        (Bounds(size=10, max_size=100), Reason.SIZE_MISMATCH, "10"),
        (Bounds(max_size=10), Reason.OBJECT_TOO_LARGE, "10"),
    ],
)
async def test_bounds_are_checked_as_bytes_arrive(
    bounds: Bounds, reason: Reason, message: str
) -> None:
    sink = Sink()
    pump = plain_pump(sink, bounds)

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 4

    with pytest.raises(GatewayError) as caught:
        await pump.run(endless())
    await pump.drain()
    assert caught.value.reason is reason
    assert message in caught.value.message
    # Refused at the chunk that crossed the bound: the ones before went in.
    assert sum(map(len, sink.written)) == 8


def test_a_declared_size_over_the_limit_is_refused_up_front() -> None:
    check_declared_size(10, 10)
    check_declared_size(None, 10)
    check_declared_size(10**12, None)
    with pytest.raises(GatewayError) as caught:
        Bounds.of(11, 10)
    assert caught.value.reason is Reason.OBJECT_TOO_LARGE


async def test_verified_checks_every_promise() -> None:
    pump = plain_pump(Sink())
    await pump.run(body(b"hello"))
    pump.verified(Expected(size=5), None, Expected())
    with pytest.raises(GatewayError) as caught:
        pump.verified(Expected(size=5), Expected(sha256=hashlib.sha256(b"other").digest()))
    assert caught.value.reason is Reason.CHECKSUM_MISMATCH


async def test_chunks_in_flight_draw_on_the_budget_and_give_it_back() -> None:
    limits = StreamLimits(max_streams=1, idle_timeout=60, max_buffered_bytes=1 << 20)
    held: list[int] = []

    async def write(data: bytes) -> None:
        held.append(current_budget().used)

    with limits.serving():
        sums = StreamChecksums()
        pump = Pump(sums, write, sums.update, Bounds())
        await pump.run(body(b"a" * 1000, b"b" * 2000))
    # Each chunk was counted while it was written, and nothing is left held.
    assert held[0] >= 1000
    assert held[1] >= 2000
    assert limits.budget.used == 0
    assert limits.budget.peak <= 3000


async def test_a_small_chunk_whose_write_fails_gives_its_budget_back() -> None:
    # Chunks under OFFLOAD_THRESHOLD are hashed and written in place, not in a gather.
    limits = StreamLimits(max_streams=1, idle_timeout=60, max_buffered_bytes=1 << 20)
    written: list[bytes] = []

    async def write(data: bytes) -> None:
        if written:
            raise GatewayError(Reason.QUOTA_EXCEEDED, "no space left")
        written.append(data)

    with limits.serving():
        sums = StreamChecksums()
        pump = Pump(sums, write, sums.update, Bounds())
        with pytest.raises(GatewayError) as caught:
            await pump.run(body(b"a" * 1000, b"b" * 2000, b"c" * 3000))
    assert caught.value.reason is Reason.QUOTA_EXCEEDED
    assert written == [b"a" * 1000]
    assert limits.budget.used == 0


class Whole:
    """A body sent whole, with its end marked."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.late = Expected()
        self.finished = True
        self.chunk_crc32c: int | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.data


def spec(key: str, **options: Any) -> WriteSpec:
    return WriteSpec("", key, WriteOptions(**options), Expected())


async def test_a_spec_is_checked_once_its_bucket_and_key_are() -> None:
    buckets = Buckets({"b": MemoryBackend()}, "b")
    too_much = {"m": "x" * 9000}
    with pytest.raises(GatewayError) as caught:
        await write(buckets, spec("", metadata=too_much), Whole(b"x"), PutLimits())
    assert caught.value.reason is Reason.INVALID_KEY
    with pytest.raises(GatewayError) as caught:
        await write(buckets, spec("k", metadata=too_much), Whole(b"x"), PutLimits())
    assert caught.value.reason is Reason.INVALID_ARGUMENT
    stored = await write(buckets, spec("k", content_type=""), Whole(b"data"), PutLimits())
    assert (stored.bucket, stored.meta.size) == ("b", 4)
    assert stored.meta.content_type == DEFAULT_CONTENT_TYPE
