"""A driver keeping objects in process memory: for tests, demos and caches.

Objects live in a dict key -> (ObjectMeta, bytes) beside a sorted list of the
UTF-8 encoded keys, which walk() bisects to list in bytewise order. Stored
bytes are immutable, so a reader simply keeps a reference to the bytes it
opened: a later replace or delete does not change what it returns.

Quota. With quota_bytes set, the bytes of committed objects plus the bytes
held by in-flight writers may not exceed it; a write that would go over
raises QUOTA_EXCEEDED at once. A writer replacing an object frees the old
object's bytes when it commits, so the accounting credits the current size of
every key that has writers in flight (once per key, however many writers):
replacing a 60-byte object with 60 bytes under a 100-byte quota succeeds, and
the memory really held stays bounded by the quota plus the size of the
objects being replaced.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import AsyncIterator

from gateway.backends.base import (
    ObjectReader,
    ObjectWriter,
    RangeReader,
)
from gateway.backends.memory.uploads import MemoryUploads
from gateway.backends.shared.on_machine import on_machine_capabilities, refuse_remote_options
from gateway.domain import listing, ranges
from gateway.domain.checksums import etag_of
from gateway.domain.conditions import check as check_conditions
from gateway.domain.conditions import check_existing
from gateway.domain.errors import GatewayError, Reason, quota_exceeded
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

KIND = "memory"


def _check_supported(options: WriteOptions) -> None:
    refuse_remote_options(options, KIND)


class _MemoryReader(RangeReader):
    """A range of bytes pinned at open time."""

    def __init__(self, meta: ObjectMeta, data: bytes, start: int, end: int) -> None:
        super().__init__(meta, start, end)
        self._data = data
        self._closed = False

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        position = self._start
        while position < self._end and not self._closed:
            stop = min(self._end, position + chunk_size)
            yield self._data[position:stop]
            position = stop

    async def close(self) -> None:
        self._closed = True
        self._data = b""


class _MemoryWriter:
    def __init__(self, backend: MemoryBackend, key: str, options: WriteOptions) -> None:
        self._backend = backend
        self._key = key
        self._options = options
        self._chunks: list[bytes] = []
        self._size = 0
        self._done = False

    @property
    def held(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        if self._done:
            raise GatewayError(Reason.INTERNAL, "write after the writer was committed or aborted")
        if not data:
            return
        self._backend._reserve(self._key, len(data))
        self._chunks.append(bytes(data))
        self._size += len(data)

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        if self._done:
            raise GatewayError(Reason.INTERNAL, "commit after the writer was committed or aborted")
        try:
            data = b"".join(self._chunks)
            self._chunks = []
            return self._backend._commit(self._key, self._options, data, checksums, self)
        finally:
            await self.abort()

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._chunks = []
        self._backend._release(self._key, self)

    # For resumable uploads (memory/uploads.py), which keep a writer open
    # across streams.

    def truncate(self, size: int) -> None:
        """Drop every byte past size."""
        kept, total = [], 0
        for chunk in self._chunks:
            if total >= size:
                break
            kept.append(chunk if total + len(chunk) <= size else chunk[: size - total])
            total += len(kept[-1])
        self._backend._reserved -= self._size - total
        self._chunks, self._size = kept, total

    def commit_keeping_data(self, checksums: Checksums) -> ObjectMeta:
        """Commit; unlike commit(), a failure leaves the bytes written."""
        data = b"".join(self._chunks)
        meta = self._backend._commit(self._key, self._options, data, checksums, self)
        self._done = True
        self._chunks = []
        self._backend._release(self._key, self)
        return meta


class MemoryBackend:
    """Objects in a dict, listed through a sorted list of UTF-8 keys."""

    def __init__(self, quota_bytes: int | None = None) -> None:
        if quota_bytes is not None and quota_bytes < 0:
            raise ValueError("quota_bytes must be >= 0")
        self._quota = quota_bytes
        self._objects: dict[str, tuple[ObjectMeta, bytes]] = {}
        self._sorted: list[bytes] = []
        self._committed = 0  # bytes of stored objects
        self._reserved = 0  # bytes held by in-flight writers
        self._writers: dict[str, int] = {}  # key -> number of in-flight writers
        self._credit = 0  # current size of every key in _writers, counted once
        self._last_generation = 0
        store = MemoryUploads(self.new_writer)
        self.capabilities = on_machine_capabilities(store, self)

    @property
    def kind(self) -> str:
        return KIND

    @property
    def used_bytes(self) -> int:
        """Bytes counted against the quota now."""
        return self._committed + self._reserved - self._credit

    # Quota accounting. None of these await, so each runs atomically on the
    # event loop.

    def _size_of(self, key: str) -> int:
        entry = self._objects.get(key)
        return 0 if entry is None else entry[0].size

    def _open_writer(self, key: str) -> None:
        count = self._writers.get(key, 0)
        if count == 0:
            self._credit += self._size_of(key)
        self._writers[key] = count + 1

    def _reserve(self, key: str, nbytes: int) -> None:
        needed = self.used_bytes + nbytes
        if self._quota is not None and needed > self._quota:
            raise quota_exceeded(quota=self._quota, needed=needed)
        self._reserved += nbytes

    def _release(self, key: str, writer: _MemoryWriter) -> None:
        self._reserved -= writer.held
        count = self._writers[key] - 1
        if count == 0:
            del self._writers[key]
            self._credit -= self._size_of(key)
        else:
            self._writers[key] = count

    def _set(self, key: str, meta: ObjectMeta | None, data: bytes) -> None:
        """Store (meta given) or remove (None) key, keeping the totals right."""
        old = self._size_of(key)
        new = 0 if meta is None else meta.size
        self._committed += new - old
        if key in self._writers:
            self._credit += new - old
        encoded = key.encode()
        if meta is None:
            if key in self._objects:
                del self._objects[key]
                del self._sorted[bisect.bisect_left(self._sorted, encoded)]
            return
        if key not in self._objects:
            bisect.insort(self._sorted, encoded)
        self._objects[key] = (meta, data)

    def _check_fits(self, key: str, new_size: int, writer: _MemoryWriter | None) -> None:
        """Raise QUOTA_EXCEEDED unless the totals stay within the quota once
        new_size bytes are stored at key, the old object freed and writer (if
        the bytes come from one) released."""
        if self._quota is None:
            return
        old = self._size_of(key)
        committed = self._committed - old + new_size
        reserved = self._reserved - (0 if writer is None else writer.held)
        credit = self._credit
        if key in self._writers:
            remaining = self._writers[key] - (0 if writer is None else 1)
            # Writers still in flight on key will replace the new object in
            # turn, so it is credited to them; otherwise key leaves the set.
            credit += (new_size - old) if remaining > 0 else -old
        needed = committed + reserved - credit
        if needed > self._quota:
            raise quota_exceeded(quota=self._quota, needed=needed)

    def _next_generation(self, previous: ObjectMeta | None) -> int:
        generation = max(time.time_ns(), self._last_generation + 1)
        if previous is not None:
            generation = max(generation, previous.generation + 1)
        self._last_generation = generation
        return generation

    def _store(
        self,
        key: str,
        content_type: str,
        metadata: dict[str, str],
        data: bytes,
        crc32c: int | None,
        sha256: bytes | None,
        previous: ObjectMeta | None,
    ) -> ObjectMeta:
        now = time.time_ns()
        meta = ObjectMeta(
            key=key,
            size=len(data),
            etag=etag_of(sha256),
            generation=self._next_generation(previous),
            create_time_ns=now,
            update_time_ns=now,
            content_type=content_type,
            metadata=metadata,
            crc32c=crc32c,
            sha256=sha256,
        )
        self._set(key, meta, data)
        return meta

    def _commit(
        self,
        key: str,
        options: WriteOptions,
        data: bytes,
        checksums: Checksums,
        writer: _MemoryWriter,
    ) -> ObjectMeta:
        entry = self._objects.get(key)
        current = None if entry is None else entry[0]
        check_conditions(key, options.conditions, current, read=False)
        self._check_fits(key, len(data), writer)
        return self._store(
            key,
            options.content_type,
            dict(options.metadata),
            data,
            checksums.crc32c,
            checksums.sha256,
            current,
        )

    def _current(self, key: str, conds: Conditions) -> tuple[ObjectMeta, bytes]:
        entry = self._objects.get(key)
        check_existing(key, conds, None if entry is None else entry[0])
        assert entry is not None
        return entry

    # The Backend protocol.

    async def head(self, key: str, conditions: Conditions = NO_CONDITIONS) -> ObjectMeta:
        return self._current(key, conditions)[0]

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        meta, data = self._current(key, conditions)
        start, end = ranges.resolve(meta.size, offset, limit)
        return _MemoryReader(meta, data, start, end)

    def new_writer(self, key: str, options: WriteOptions) -> _MemoryWriter:
        _check_supported(options)
        hint = options.size_hint
        if self._quota is not None and hint is not None and hint > self._quota:
            raise quota_exceeded(quota=self._quota, needed=hint)
        self._open_writer(key)
        return _MemoryWriter(self, key, options)

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        return self.new_writer(key, options)

    async def delete(self, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
        entry = self._objects.get(key)
        check_conditions(key, conditions, None if entry is None else entry[0], read=False)
        if entry is None:
            return False
        self._set(key, None, b"")
        return True

    async def list(self, query: ListQuery) -> ListPage:
        return await listing.build_page(self._walk, query)

    async def _walk(self, prefix: str, after: bytes) -> AsyncIterator[ObjectMeta]:
        encoded_prefix = prefix.encode()
        index = max(
            bisect.bisect_right(self._sorted, after),
            bisect.bisect_left(self._sorted, encoded_prefix),
        )
        # Re-bisect after every yield: the list may change while the caller
        # holds the generator suspended.
        while index < len(self._sorted):
            encoded = self._sorted[index]
            if not encoded.startswith(encoded_prefix):
                return
            entry = self._objects.get(encoded.decode())
            if entry is not None:
                yield entry[0]
            index = bisect.bisect_right(self._sorted, encoded)

    async def copy(self, request: CopyRequest) -> ObjectMeta:
        _check_supported(request.options)
        source, data = self._current(request.source_key, request.source_conditions)
        key = request.destination_key
        entry = self._objects.get(key)
        current = None if entry is None else entry[0]
        check_conditions(key, request.options.conditions, current, read=False)
        self._check_fits(key, len(data), None)
        content_type, metadata = request.content_of(source)
        # The source's SHA-256 if it has one (its bucket's choice), as other drivers' copies.
        sha256 = source.sha256
        return self._store(key, content_type, metadata, data, source.crc32c, sha256, current)

    async def move(
        self, source_key: str, destination_key: str, conditions: Conditions = NO_CONDITIONS
    ) -> ObjectMeta:
        # No await: the move is atomic on the event loop, and the bytes are shared.
        source, data = self._current(source_key, NO_CONDITIONS)
        entry = self._objects.get(destination_key)
        current = None if entry is None else entry[0]
        check_conditions(destination_key, conditions, current, read=False)
        meta = self._store(
            destination_key,
            source.content_type,
            dict(source.metadata),
            data,
            source.crc32c,
            source.sha256,
            current,
        )
        self._set(source_key, None, b"")
        return meta

    async def probe(self) -> None:
        return None

    async def close(self) -> None:
        return None
