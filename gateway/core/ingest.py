"""The one ingest pump: how every byte the gateway stores gets in, whether
through a gRPC Put (plain, or continuing a resumable upload), a signed-URL
PUT or POST, or a cross-backend Copy.

Bytes are hashed (CRC32C of the whole object, and its SHA-256 when the
bucket or the write asks for it: wants_sha256) and written as they arrive,
and the object's size is checked against what was promised and the
gateway's limit as they do; the object is committed only when the size and
every expected checksum match, otherwise the write is aborted (a resumable
upload: suspended, what was persisted stays) and nothing is visible. The
driver's write and the hashing of a chunk run side by side in worker threads,
and they overlap with the receipt of the next chunk. The chunks in flight
draw on the gateway's byte budget (gateway.core.stream_limits). A write's
inspectors (gateway.core.upload_checks: the bucket's upload policy) see its
first bytes before any is written and have the last word before the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from gateway.backends.base import Backend, ObjectWriter
from gateway.core.stream_limits import BufferBudget, current_budget
from gateway.core.upload_checks import Inspector, bounded
from gateway.domain.checksums import Sha256Choice, StreamChecksums
from gateway.domain.errors import (
    checksum_mismatch,
    invalid_argument,
    object_too_large,
    size_mismatch,
)
from gateway.domain.objects import Checksums, ObjectMeta, WriteOptions

# Chunks below this are hashed on the event loop: a thread hop costs more.
OFFLOAD_THRESHOLD = 64 * 1024

Hashed = TypeVar("Hashed")


@dataclass(slots=True)
class Expected:
    """What the client promised about the whole object; None: not promised."""

    size: int | None = None
    crc32c: int | None = None
    sha256: bytes | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """The bytes of a write and what they must come to, wherever they are
    stored (store, scanned_writes.store_checked).

    max_size bounds the object (OBJECT_TOO_LARGE, checked as bytes arrive).
    late_expected is filled by the caller while chunks are consumed (for
    checksums that arrive with the last message) and checked at the end too.
    known_crc32c: see Pump.run. with_sha256: whether the object's SHA-256 is
    computed (wants_sha256). inspectors (gateway.core.upload_checks.
    upload_inspectors) see the first bytes before any is written, may bound
    the size further, and have the last word before the commit.
    """

    chunks: AsyncIterator[bytes]
    expected: Expected
    max_size: int | None = None
    late_expected: Expected | None = None
    known_crc32c: Callable[[], int | None] | None = None
    _: KW_ONLY
    with_sha256: bool = True
    inspectors: tuple[Inspector, ...] = ()


class Body(Protocol):
    """An object's bytes as a front end receives them (a Put stream's
    messages, say), already checked for the shape of its protocol."""

    # Checksums of the whole object sent along with the bytes (a Put's last
    # message may carry them): filled in as chunks() is read.
    late: Expected
    # Whether the sender marked the end explicitly: known once chunks() is
    # exhausted. A body that merely stops may have been cut short.
    finished: bool
    # The CRC32C of the chunk chunks() yielded last, when the body checked it
    # against one sent with it (None: not known). The whole object's CRC32C
    # is then combined from it rather than computed over the bytes again.
    chunk_crc32c: int | None

    def chunks(self) -> AsyncIterator[bytes]: ...


def wants_sha256(choice: Sha256Choice, *, requested: bool, expected: Expected) -> bool:
    """Whether a write computes its object's SHA-256: always on a bucket
    whose choice it is, else when the write asks for it or promises one
    (there is no checking a promise without computing it)."""
    return choice is Sha256Choice.ALWAYS or requested or expected.sha256 is not None


def verify(expected: Expected, sums: StreamChecksums) -> None:
    if expected.size is not None and expected.size != sums.size:
        raise size_mismatch(expected=expected.size, actual=sums.size)
    if expected.crc32c is not None and expected.crc32c != sums.crc32c:
        raise checksum_mismatch(
            checksum="object crc32c", expected=f"{expected.crc32c:08x}", actual=f"{sums.crc32c:08x}"
        )
    if expected.sha256 is None:
        return
    actual = sums.sha256
    if actual is None:
        # Promised only with the last message, after the bytes went by unhashed.
        raise invalid_argument(
            "object_checksums.sha256 was sent, but this write did not compute the "
            "object's SHA-256 (its bucket computes it only on request): set "
            "PutSpec.compute_sha256 to have it checked; nothing was stored"
        )
    if expected.sha256 != actual:
        raise checksum_mismatch(
            checksum="object sha256", expected=expected.sha256.hex(), actual=actual.hex()
        )


def check_declared_size(size: int | None, max_size: int | None) -> None:
    """OBJECT_TOO_LARGE when the size an object is promised to be is over the
    gateway's limit: refused before any byte is read."""
    if size is not None and max_size is not None and size > max_size:
        raise object_too_large(limit=max_size, size=size)


@dataclass(frozen=True, slots=True)
class Bounds:
    """How large an object may grow as its bytes arrive: the size promised,
    else the gateway's limit (None: unbounded)."""

    size: int | None = None
    max_size: int | None = None

    @classmethod
    def of(cls, size: int | None, max_size: int | None) -> Bounds:
        """The bounds of an object promised to be size bytes; OBJECT_TOO_LARGE
        at once when the promise is over the gateway's limit."""
        check_declared_size(size, max_size)
        return cls(size, max_size)

    def check(self, received: int) -> None:
        """SIZE_MISMATCH or OBJECT_TOO_LARGE once received is past the bounds."""
        if self.size is not None:
            if received > self.size:
                raise size_mismatch(expected=self.size, actual=received)
        elif self.max_size is not None and received > self.max_size:
            raise object_too_large(limit=self.max_size, size=received)


def release_budget(budget: BufferBudget, size: int, _: object) -> None:
    """A done-callback giving a finished write's bytes back to the budget."""
    budget.release(size)


@dataclass(slots=True)
class Pump(Generic[Hashed]):
    """Moves a body's chunks into a writer (write), hashing them into sums.

    What differs between the writes plugs in: hash (sums.update, or a
    resumable upload's hashing that also snapshots its state at each of the
    driver's checkpoints) runs beside the chunk's write and its result goes
    to settle once both are done (the upload's checkpoints); charge is told
    each chunk's size before it is written (a quota); interrupted is asked as
    each chunk arrives (an upload being aborted ends the pump with
    CancelledError).
    """

    sums: StreamChecksums
    write: Callable[[bytes], Awaitable[None]]
    # Called with the chunk and its CRC32C when known already (see Body).
    hash: Callable[[bytes, int | None], Hashed]
    bounds: Bounds
    _: KW_ONLY
    settle: Callable[[Hashed], Awaitable[None]] | None = None
    charge: Callable[[int], None] | None = None
    interrupted: Callable[[], bool] | None = None
    # What else checks the bytes (gateway.core.upload_checks): shown the first
    # bytes before any is written, asked again before the commit (accepted).
    inspectors: tuple[Inspector, ...] = ()
    # The chunk being hashed and written: (hash result, write result).
    _in_flight: asyncio.Future[tuple[Hashed, None]] | None = field(
        default=None, init=False, repr=False
    )

    async def run(
        self,
        chunks: AsyncIterator[bytes],
        *,
        start: int = 0,
        skip_to: int = 0,
        known_crc32c: Callable[[], int | None] | None = None,
        complete: Callable[[], bool] | None = None,
    ) -> None:
        """Write and hash every chunk. The first chunk begins at offset
        start; bytes before skip_to (a resumable upload's persisted size)
        are persisted already and skipped. known_crc32c, asked as each chunk
        arrives, tells its CRC32C when the body checked it (Body.chunk_crc32c).

        With inspectors that want the first bytes (a pump from offset 0),
        chunks are held back until those have arrived and passed; a body
        that ends before then is inspected whole if complete() says it is
        complete (None: it is) and otherwise writes nothing."""
        budget = current_budget()
        position = start
        head_size = max((i.head_size for i in self.inspectors), default=0)
        # Chunks held back until the head is inspected, each with its CRC32C.
        held: list[tuple[bytes, int | None]] = []
        held_size = 0
        async for data in chunks:
            if self.interrupted is not None and self.interrupted():
                # The interrupter's cancel is the fast path; this check makes
                # sure a cancel lost in a read that just completed cannot let
                # the stream write on.
                raise asyncio.CancelledError
            crc = None if known_crc32c is None else known_crc32c()
            if head_size:
                held.append((data, crc))
                held_size += len(data)
                self.bounds.check(start + held_size)
                if held_size < head_size:
                    continue
                del data
                head_size = 0
                position = await self._pass_head(budget, held, position, skip_to)
                continue
            position = await self._take(budget, data, crc, position, skip_to)
            # The write holds the chunk until it is done: a stream whose client
            # goes quiet then holds none.
            del data
        if head_size and (complete is None or complete()):
            position = await self._pass_head(budget, held, position, skip_to)
        # Else (a head still held back by a stream that stopped short) nothing
        # of it was written: the stream that continues starts again from it.
        await self._settle_in_flight()

    async def _pass_head(
        self,
        budget: BufferBudget,
        held: list[tuple[bytes, int | None]],
        position: int,
        skip_to: int,
    ) -> int:
        """Show the inspectors the held chunks' first bytes, then write them
        (each with its own CRC32C) and let go of them; the position after."""
        head = held[0][0] if len(held) == 1 else b"".join(data for data, _ in held)
        for inspector in self.inspectors:
            if inspector.head_size:
                await inspector.check_head(head[: inspector.head_size])
        del head
        for data, crc in held:
            position = await self._take(budget, data, crc, position, skip_to)
        held.clear()
        return position

    async def _take(
        self, budget: BufferBudget, data: bytes, crc: int | None, position: int, skip_to: int
    ) -> int:
        """Hash and write one chunk beginning at position (its part before
        skip_to skipped); the position after it."""
        begin, position = position, position + len(data)
        if position <= skip_to or not data:
            return position  # nothing, or persisted already
        if begin < skip_to:
            data = data[skip_to - begin :]
            crc = None  # the chunk's, not its tail's
        self.bounds.check(position)
        if self.charge is not None:
            self.charge(len(data))
        # Chunk N is hashed and written (in worker threads) while chunk
        # N+1 is being received, so at most two chunks are held at once.
        await self._settle_in_flight()
        # The gateway-wide budget of chunks in flight: over it, this stream
        # waits and reads nothing more meanwhile (backpressure).
        await budget.acquire(len(data))
        if len(data) < OFFLOAD_THRESHOLD:
            # Hashed on the loop, and written before the next chunk is
            # read: two tasks and a gathering future cost more than a
            # small chunk's whole write, which a driver mostly buffers.
            await self._small(budget, data, crc)
            return position
        in_flight = asyncio.gather(self._hashed(data, crc), self.write(data))
        in_flight.add_done_callback(functools.partial(release_budget, budget, len(data)))
        self._in_flight = in_flight
        return position

    async def _small(self, budget: BufferBudget, data: bytes, crc: int | None) -> None:
        """Hash and write a chunk under OFFLOAD_THRESHOLD here and now."""
        try:
            hashed = self.hash(data, crc)
            await self.write(data)
        finally:
            budget.release(len(data))
        if self.settle is not None:
            await self.settle(hashed)

    async def _hashed(self, data: bytes, crc: int | None) -> Hashed:
        """Hash a chunk of OFFLOAD_THRESHOLD or more in a worker thread
        (a smaller one never comes here: run() hands it to _small)."""
        return await asyncio.to_thread(self.hash, data, crc)

    async def _settle_in_flight(self) -> None:
        if self._in_flight is None:
            return
        hashed, _ = await self._in_flight
        self._in_flight = None
        if self.settle is not None:
            await self.settle(hashed)

    async def drain(self) -> None:
        """After a failure: let a chunk still being hashed and written in a
        thread finish (whatever its outcome), so that the writer can be
        wound down."""
        if self._in_flight is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._in_flight)

    async def accepted(self, *promises: Expected | None) -> Checksums:
        """verified(), and then every inspector's last word."""
        checksums = self.verified(*promises)
        for inspector in self.inspectors:
            await inspector.check_end(checksums.size)
        return checksums

    def verified(self, *promises: Expected | None) -> Checksums:
        """The object's checksums, once they match every promise
        (SIZE_MISMATCH or CHECKSUM_MISMATCH if not)."""
        for promise in promises:
            if promise is not None:
                verify(promise, self.sums)
        return Checksums(self.sums.crc32c, self.sums.sha256, self.sums.size)


async def store(
    backend: Backend,
    key: str,
    options: WriteOptions,
    incoming: Incoming,
    *,
    tee: Callable[[bytes], Awaitable[None]] | None = None,
) -> ObjectMeta:
    """Write the incoming chunks to key and commit when they check out.

    tee: another consumer of each chunk (a malware scan), run beside its
    write (teed); its failure fails the write.
    """
    inspectors = incoming.inspectors
    bounds = Bounds.of(incoming.expected.size, bounded(incoming.max_size, inspectors))
    writer = await backend.open_write(key, options)
    sums = StreamChecksums(with_sha256=incoming.with_sha256)
    write = writer.write if tee is None else functools.partial(teed, writer.write, tee)
    pump = Pump(sums, write, sums.update, bounds, inspectors=inspectors)
    try:
        await pump.run(incoming.chunks, known_crc32c=incoming.known_crc32c)
        checksums = await pump.accepted(incoming.expected, incoming.late_expected)
        return await writer.commit(checksums)
    except BaseException:
        # Cancellation included: a dropped stream must leave nothing behind.
        await asyncio.shield(_discard(writer, pump))
        raise


async def teed(
    write: Callable[[bytes], Awaitable[None]], tee: Callable[[bytes], Awaitable[None]], data: bytes
) -> None:
    """write(data) and tee(data) side by side (one after the other for a
    small chunk), both let finish before a failure of either is raised: the
    writer is never aborted under a write still running."""
    if len(data) < OFFLOAD_THRESHOLD:
        await tee(data)
        await write(data)
        return
    outcomes = await asyncio.gather(write(data), tee(data), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def _discard(writer: ObjectWriter, pump: Pump[Any]) -> None:
    """Let a write still running in a thread finish, then abort the object."""
    await pump.drain()
    await writer.abort()
