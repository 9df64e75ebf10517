"""Storing a stream of bytes with end-to-end integrity, shared by gRPC Put,
signed-URL PUT and cross-backend Copy.

Bytes are hashed (CRC32C and SHA-256 of the whole object) and written as they
arrive; the object is committed only when the size and every expected
checksum match, otherwise the write is aborted and nothing is visible. The
driver's write and the hashing of a chunk run side by side in worker threads,
and they overlap with the receipt of the next chunk. The chunks in flight
draw on the gateway's byte budget (gateway.core.stream_limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from gateway.backends.base import Backend, ObjectWriter
from gateway.core.stream_limits import BufferBudget, current_budget
from gateway.domain.checksums import StreamChecksums
from gateway.domain.errors import checksum_mismatch, object_too_large, size_mismatch
from gateway.domain.objects import Checksums, ObjectMeta, WriteOptions

# Chunks below this are hashed on the event loop: a thread hop costs more.
OFFLOAD_THRESHOLD = 64 * 1024


@dataclass(slots=True)
class Expected:
    """What the client promised about the whole object; None: not promised."""

    size: int | None = None
    crc32c: int | None = None
    sha256: bytes | None = None


async def _hash(sums: StreamChecksums, data: bytes) -> None:
    if len(data) < OFFLOAD_THRESHOLD:
        sums.update(data)
    else:
        await asyncio.to_thread(sums.update, data)


async def store(
    backend: Backend,
    key: str,
    options: WriteOptions,
    chunks: AsyncIterator[bytes],
    expected: Expected,
    max_size: int | None = None,
    late_expected: Expected | None = None,
) -> ObjectMeta:
    """Write chunks to key and commit when they check out.

    max_size bounds the object (OBJECT_TOO_LARGE, checked as bytes arrive).
    late_expected is filled by the caller while chunks are consumed (for
    checksums that arrive with the last message) and checked at the end too.
    """
    limit = max_size
    if expected.size is not None:
        if max_size is not None and expected.size > max_size:
            raise object_too_large(max_size, expected.size)
        limit = expected.size
    writer = await backend.open_write(key, options)
    budget = current_budget()
    sums = StreamChecksums()
    received = 0
    # Chunk N is hashed and written (in worker threads) while chunk N+1 is
    # being received, so at most two chunks are held at once.
    in_flight: asyncio.Future[Any] | None = None
    try:
        async for data in chunks:
            if not data:
                continue
            received += len(data)
            if limit is not None and received > limit:
                if expected.size is not None:
                    raise size_mismatch(expected.size, received)
                assert max_size is not None
                raise object_too_large(max_size, received)
            if in_flight is not None:
                await in_flight
            # The gateway-wide budget of chunks in flight: over it, this stream
            # waits and reads nothing more meanwhile (backpressure).
            await budget.acquire(len(data))
            in_flight = asyncio.gather(_hash(sums, data), writer.write(data))
            in_flight.add_done_callback(functools.partial(release_budget, budget, len(data)))
            # The write holds the chunk until it is done: a stream whose client
            # goes quiet then holds none.
            del data
        if in_flight is not None:
            await in_flight
            in_flight = None
        for promise in (expected, late_expected):
            if promise is not None:
                verify(promise, sums)
        return await writer.commit(Checksums(sums.crc32c, sums.sha256, sums.size))
    except BaseException:
        # Cancellation included: a dropped stream must leave nothing behind.
        await asyncio.shield(_discard(writer, in_flight))
        raise


def release_budget(budget: BufferBudget, size: int, _: object) -> None:
    """A done-callback giving a finished write's bytes back to the budget."""
    budget.release(size)


async def _discard(writer: ObjectWriter, in_flight: asyncio.Future[Any] | None) -> None:
    """Let a write still running in a thread finish, then abort the object."""
    if in_flight is not None:
        with contextlib.suppress(BaseException):
            await in_flight
    await writer.abort()


def verify(expected: Expected, sums: StreamChecksums) -> None:
    if expected.size is not None and expected.size != sums.size:
        raise size_mismatch(expected.size, sums.size)
    if expected.crc32c is not None and expected.crc32c != sums.crc32c:
        raise checksum_mismatch("object crc32c", f"{expected.crc32c:08x}", f"{sums.crc32c:08x}")
    if expected.sha256 is not None and expected.sha256 != sums.sha256:
        raise checksum_mismatch("object sha256", expected.sha256.hex(), sums.sha256.hex())
