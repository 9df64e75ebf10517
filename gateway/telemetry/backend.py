"""A bucket's driver, instrumented: every call the gateway makes to it is
timed and counted here, whichever route it came by, so no driver and no
operation records anything itself.

The wrapper passes on exactly the driver's capabilities, those that reach
the storage (resumable uploads, the stale-upload cleaner) instrumented too
(gateway/telemetry/uploads.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable

from gateway.backends.base import (
    Backend,
    Encoded,
    ForwardingWriter,
    ObjectMover,
    ObjectReader,
    ObjectWriter,
)
from gateway.backends.forwarding import ForwardingBackend, ForwardingMover, ForwardingReader
from gateway.domain.objects import (
    NO_CONDITIONS,
    Checksums,
    Conditions,
    CopyRequest,
    ListPage,
    ListQuery,
    ObjectMeta,
    WriteOptions,
)
from gateway.telemetry.instruments import CostClass, GatewayMetrics
from gateway.telemetry.meter import BucketMeter, outcome_of
from gateway.telemetry.tracing import GatewayTracing
from gateway.telemetry.uploads import InstrumentedCleaner, InstrumentedUploads


class InstrumentedBackend(ForwardingBackend):
    """Implements Backend over another, recording into metrics as bucket,
    and a span per call when tracing (per slow call, when the driver's calls
    stay on the machine)."""

    def __init__(
        self,
        backend: Backend,
        bucket: str,
        metrics: GatewayMetrics,
        tracing: GatewayTracing | None = None,
    ) -> None:
        capabilities = backend.capabilities
        self._meter = meter = BucketMeter(
            metrics, bucket, backend.kind, tracing, slow_only=capabilities.calls_stay_local
        )
        uploads, cleaner = capabilities.uploads, capabilities.cleaner
        mover = capabilities.mover
        super().__init__(
            backend,
            dataclasses.replace(
                capabilities,
                mover=None if mover is None else InstrumentedMover(mover, meter),
                uploads=None if uploads is None else InstrumentedUploads(uploads, meter),
                cleaner=None if cleaner is None else InstrumentedCleaner(cleaner, meter),
                # For the layers beneath (compression); not a way around the meter.
                version_reader=None,
            ),
        )

    async def head(self, key: str, conditions: Conditions = NO_CONDITIONS) -> ObjectMeta:
        with self._meter.call("head", CostClass.B):
            meta = await super().head(key, conditions)
        self._meter.sized(meta.size)
        return meta

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        with self._meter.call("open_read", CostClass.B):
            reader = await super().open_read(key, offset, limit, conditions)
        self._meter.sized(reader.meta.size)
        return MeteredReader(reader, self._meter)

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        with self._meter.call("open_write", CostClass.A):
            writer = await super().open_write(key, options)
        return MeteredWriter(writer, self._meter)

    async def delete(self, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
        # Deletes cost nothing with S3 and GCS: timed, not counted by class.
        with self._meter.call("delete"):
            return await super().delete(key, conditions)

    async def list(self, query: ListQuery) -> ListPage:
        with self._meter.call("list", CostClass.A):
            return await super().list(query)

    async def copy(self, request: CopyRequest) -> ObjectMeta:
        with self._meter.call("copy", CostClass.A):
            meta = await super().copy(request)
        self._meter.stored(meta.size)
        return meta

    async def probe(self) -> None:
        with self._meter.call("probe"):
            await super().probe()


class InstrumentedMover(ForwardingMover):
    """Implements ObjectMover over a driver's: each move timed as a call."""

    def __init__(self, mover: ObjectMover, meter: BucketMeter) -> None:
        super().__init__(mover)
        self._meter = meter

    async def move(
        self, source_key: str, destination_key: str, conditions: Conditions = NO_CONDITIONS
    ) -> ObjectMeta:
        with self._meter.call("move", CostClass.A):
            return await super().move(source_key, destination_key, conditions)


class MeteredReader(ForwardingReader):
    """An ObjectReader whose chunks count as sent and as storage egress, each
    chunk's wait on the backend timed (not the client's on the gateway); a
    range held whole when opened counts as one chunk, with no wait. Its
    object and range are the driver's reader's."""

    def __init__(self, reader: ObjectReader, meter: BucketMeter) -> None:
        super().__init__(reader)
        self._meter = meter

    def held(self) -> bytes | None:
        held = self._reader.held()
        # A front serves what held() returns (ObjectReader.held): its bytes
        # count here as one chunk, sent and egress, as chunks() would count
        # them. No read duration is recorded: nothing was waited for, the
        # driver read them inside open_read, which is timed; a duration of
        # about zero would be a read that never happened, pulling the read
        # latency down. An empty range counts nothing, as when streamed.
        if held:
            self._meter.served(len(held))
        return held

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        async for data, _ in self._metered(self._reader.chunks(chunk_size), len):
            yield data

    async def encoded(
        self, chunk_size: int, encode: Callable[[bytes], Encoded]
    ) -> AsyncIterator[tuple[Encoded, int]]:
        # The wait timed includes the encoding when the driver does both in one hop.
        async for item, _ in self._metered(
            self._reader.encoded(chunk_size, encode), lambda item: item[1]
        ):
            yield item

    async def _metered(
        self, items: AsyncIterator[Encoded], size_of: Callable[[Encoded], int]
    ) -> AsyncIterator[tuple[Encoded, int]]:
        meter = self._meter
        asked = time.perf_counter()
        try:
            async for item in items:
                size = size_of(item)
                meter.read_chunk(size, time.perf_counter() - asked)
                yield item, size
                asked = time.perf_counter()
        except (Exception, GeneratorExit) as error:
            if not isinstance(error, GeneratorExit):  # the consumer stopped early
                meter.finished("read", outcome_of(error), time.perf_counter() - asked)
            raise


class MeteredWriter(ForwardingWriter[ObjectWriter]):
    """An ObjectWriter whose chunks count as received, and whose commit
    counts the object's bytes as stored."""

    def __init__(self, writer: ObjectWriter, meter: BucketMeter) -> None:
        super().__init__(writer)
        self._meter = meter

    async def write(self, data: bytes) -> None:
        await self._meter.write_chunk(self._writer.write, data)

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        with self._meter.call("commit"):
            meta = await super().commit(checksums)
        self._meter.stored(meta.size)
        return meta
