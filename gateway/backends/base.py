"""The contract between the gateway and a storage driver.

A driver serves one gateway bucket (a local directory, a memory area, an S3
bucket and prefix...). It knows nothing of gRPC: it takes validated keys and
plain values and raises gateway.domain.errors.GatewayError. Integrity (per-chunk and
whole-object checksums, declared sizes) is checked by the gateway before it
calls ObjectWriter.commit, so drivers only store what they are given and the
checksums that come with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from gateway.domain.dedup import DedupStats, SweepResult
from gateway.domain.lifecycle import LifecycleRule, StoreRule
from gateway.domain.objects import (
    NO_CONDITIONS,
    Checksums,
    Conditions,
    CopyRequest,
    ListPage,
    ListQuery,
    ObjectMeta,
    Presigned,
    PresignRequest,
    UploadStatus,
    WriteOptions,
)

Encoded = TypeVar("Encoded")

# Chunks below this are encoded on the event loop: a thread hop costs more.
ENCODE_OFFLOAD_THRESHOLD = 64 * 1024


async def encode_off_loop(encode: Callable[[bytes], Encoded], data: bytes) -> Encoded:
    """encode(data), in a worker thread unless data is small."""
    if len(data) < ENCODE_OFFLOAD_THRESHOLD:
        return encode(data)
    return await asyncio.to_thread(encode, data)


class ObjectWriter(Protocol):
    """An object being written. Exactly one of commit or abort ends it."""

    async def write(self, data: bytes) -> None:
        """Append data. Memory held by the driver stays bounded."""

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        """Check the write's conditions against the current object and make
        the new object visible atomically. On any error nothing is visible and
        the writer is aborted."""

    async def abort(self) -> None:
        """Discard everything written; idempotent, safe after a failed commit."""


class ObjectReader(Protocol):
    """An open object (or range of one), pinned to one generation."""

    @property
    def meta(self) -> ObjectMeta: ...

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int:
        """One past the last byte this reader serves."""

    def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        """The range's bytes in chunks of at most chunk_size."""

    def encoded(
        self, chunk_size: int, encode: Callable[[bytes], Encoded]
    ) -> AsyncIterator[tuple[Encoded, int]]:
        """The chunks of chunks(chunk_size) passed through encode (CPU-bound:
        off the event loop for large chunks), each with its size. A driver
        reading in worker threads encodes in the same hop as it reads."""

    def held(self) -> bytes | None:
        """The whole range's bytes when the reader holds them already, with
        no I/O left to do (a small local object, read when opened); None
        otherwise. A front may then answer without streaming the chunks; it
        asks only when it will serve what it is given, as a wrapper may count
        the bytes as served when it hands them over (telemetry's
        MeteredReader)."""

    async def close(self) -> None:
        """Release the object (file handles...); idempotent."""


class RangeReader:
    """What every driver's reader shares: the object and the range it serves.
    Subclasses add chunks() and close(), and may override encoded()."""

    def __init__(self, meta: ObjectMeta, start: int, end: int) -> None:
        self._meta = meta
        self._start = start
        self._end = end

    @property
    def meta(self) -> ObjectMeta:
        return self._meta

    @property
    def start(self) -> int:
        return self._start

    @property
    def end(self) -> int:
        """One past the last byte this reader serves."""
        return self._end

    def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        raise NotImplementedError

    def held(self) -> bytes | None:
        return None

    async def encoded(
        self, chunk_size: int, encode: Callable[[bytes], Encoded]
    ) -> AsyncIterator[tuple[Encoded, int]]:
        async for data in self.chunks(chunk_size):
            yield await encode_off_loop(encode, data), len(data)


class Backend(Protocol):
    """A storage driver serving one gateway bucket."""

    @property
    def kind(self) -> str:
        """Driver name for logs and errors: "local", "memory", "s3"..."""

    @property
    def capabilities(self) -> Capabilities:
        """What the driver offers beyond storing objects."""

    async def head(self, key: str, conditions: Conditions = NO_CONDITIONS) -> ObjectMeta:
        """The object's metadata, or OBJECT_NOT_FOUND."""

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        """Open a range: offset < 0 reads the last -offset bytes, limit None
        reads to the end. offset > size is INVALID_RANGE (see ranges.py)."""

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        """Start writing an object; nothing is visible until commit."""

    async def delete(self, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
        """Remove the object; whether it existed. Missing with conditions set
        is PRECONDITION_FAILED."""

    async def list(self, query: ListQuery) -> ListPage:
        """One page of the listing query asks for (see ListQuery)."""

    async def copy(self, request: CopyRequest) -> ObjectMeta:
        """Copy within this backend, as request says (CopyRequest)."""

    async def probe(self) -> None:
        """Raise BACKEND_UNAVAILABLE when the storage cannot be reached."""

    async def close(self) -> None:
        """Release connections and background tasks."""


class PresigningBackend(Protocol):
    """A backend whose storage signs URLs itself (S3, GCS): holders of such a
    URL then talk to the storage directly, not to the gateway. Backends
    without this capability get URLs signed and served by the gateway."""

    async def sign_url(self, request: PresignRequest) -> Presigned:
        """A URL allowing request.method (GET, PUT or POST) on request.key.
        max_size and min_size bound a POST's object; content_type binds PUT
        and POST."""


class ObjectMover(Protocol):
    """A backend that moves an object to another key cheaply and atomically
    (local: a rename; memory: a dict entry), where others copy and delete."""

    async def move(
        self, source_key: str, destination_key: str, conditions: Conditions = NO_CONDITIONS
    ) -> ObjectMeta:
        """Make the object at source_key (its bytes, content type, metadata
        and checksums) the object at destination_key, when conditions hold
        against what is there; the source is gone then. OBJECT_NOT_FOUND
        when there is no source; on any error nothing changed."""


class VersionReader(Protocol):
    """Opens a range of an object already described, without asking the store
    for its metadata again."""

    async def open_version(self, meta: ObjectMeta, offset: int, limit: int | None) -> ObjectReader:
        """The range offset/limit (as open_read takes it) of exactly the
        stored object meta describes (as this driver's head or reader told it,
        meta.key its key), pinned to its etag or generation: PRECONDITION_FAILED
        or OBJECT_NOT_FOUND once that object was replaced or deleted, when
        opened or while read. The reader's meta is meta."""


class StaleUploadCleaner(Protocol):
    """A backend that can hold incomplete uploads (S3 multipart uploads a
    crashed writer left, resumable uploads never finished)."""

    async def abort_stale_uploads(self, older_than_s: float, *, dry_run: bool = False) -> int:
        """Abort the gateway's incomplete uploads, resumable ones included,
        started more than older_than_s seconds ago; how many were aborted.
        dry_run: abort nothing; how many would be (as listed now: one that a
        stream elsewhere finishes meanwhile is counted all the same)."""


class UploadWriter(Protocol):
    """One stream's worth of a resumable upload, continuing at the
    persisted size. Exactly one of commit, suspend or abort ends it."""

    @property
    def checkpoint_bytes(self) -> int:
        """The unit in which the backend persists bytes (an S3 part, a GCS
        chunk...): the gateway calls checkpoint() at each multiple of it."""

    async def write(self, data: bytes) -> None:
        """Append data. Memory held by the driver stays bounded."""

    async def checkpoint(self, size: int, state: bytes) -> None:
        """The gateway's record once the upload holds size bytes (a multiple
        of checkpoint_bytes). The driver stores it with the upload as soon as
        those bytes are durable, and returns it as UploadStatus.state from
        then on. It may return before they are durable."""

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        """Commit the object as ObjectWriter.commit does, and record the
        upload as complete. On a failed commit the upload stays resumable
        from what was durable."""

    async def suspend(self) -> None:
        """The stream stopped early: wait for what is in flight, record the
        last durable checkpoint, release resources. The upload stays
        resumable; bytes past the last checkpoint may be lost."""

    async def abort(self) -> None:
        """Discard the whole upload (AbortUpload); idempotent."""


# The writer a ForwardingWriter passes its calls on to.
InnerWriter = TypeVar("InnerWriter", bound=ObjectWriter)


class ForwardingWriter(Generic[InnerWriter]):
    """An ObjectWriter (or a writer offering more, as an UploadWriter does)
    that passes every call on to another: the base of the wrappers that add
    to some calls (metering, purging, dedup...)."""

    def __init__(self, writer: InnerWriter) -> None:
        self._writer = writer

    async def write(self, data: bytes) -> None:
        await self._writer.write(data)

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        return await self._writer.commit(checksums)

    async def abort(self) -> None:
        await self._writer.abort()


class ForwardingUploadWriter(ForwardingWriter[UploadWriter]):
    """An UploadWriter that passes every call on to another: the base of the
    wrappers that add to some calls (metering, releasing the upload)."""

    @property
    def checkpoint_bytes(self) -> int:
        return self._writer.checkpoint_bytes

    async def checkpoint(self, size: int, state: bytes) -> None:
        await self._writer.checkpoint(size, state)

    async def suspend(self) -> None:
        await self._writer.suspend()


# A resumed upload: its status, and a writer unless it is complete.
Resumed = tuple[UploadStatus, UploadWriter | None]


class ResumableBackend(Protocol):
    """A backend that keeps uploads resumable across streams and processes.

    A handle is the driver's own name for an upload (an S3 multipart upload
    id, a GCS session, a local record's name); the gateway carries it inside
    an authenticated upload_id, so drivers may trust the handles they get.
    An unknown handle is UPLOAD_NOT_FOUND.
    """

    async def start_upload(self, key: str, options: WriteOptions, state: bytes) -> str:
        """Begin an upload of key with options and the gateway's initial
        record; its handle. Nothing is visible at key until commit."""

    async def query_upload(self, key: str, handle: str) -> UploadStatus:
        """What is persisted, or the object once complete."""

    async def resume_upload(self, key: str, handle: str) -> Resumed:
        """The upload's status and a writer continuing at its persisted size
        (None once complete). One writer per upload at a time."""

    async def abort_upload(self, key: str, handle: str) -> bool:
        """Discard the upload; whether there was an unfinished one."""


class Deduplicating(Protocol):
    """A bucket that stores each content once (gateway/layers/dedup): its
    statistics and its garbage collection."""

    async def dedup_stats(self) -> DedupStats:
        """The bucket's objects and blobs, by listing."""

    async def collect_garbage(self, now: float | None = None, dry_run: bool = False) -> SweepResult:
        """One sweep: delete the blobs no reference names, and what killed
        writes left, once older than the grace period; now: seconds since
        the epoch (default: the clock's); dry_run: only count them."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a driver offers beyond storing objects, held as values.

    The gateway asks these fields, never the driver's type, so a wrapper
    around a driver (tracing, authorization, read-only) passes on exactly the
    capabilities it chooses to and cannot hide or fake one by accident.
    """

    # The storage signs URLs itself (S3, GCS); None: the gateway signs them.
    presigner: PresigningBackend | None = None
    # Uploads stay resumable across streams and processes (the shared
    # engine, backends/shared/resumable.py, over the driver's own store).
    uploads: ResumableBackend | None = None
    # Counts what its unfinished uploads hold (memory, local); None: not counted.
    upload_counter: UnfinishedCounter | None = None
    # Moves an object within the store cheaply (a rename); None: the
    # gateway copies (server-side) and deletes instead.
    mover: ObjectMover | None = None
    # Keeps incomplete uploads that a sweep should abort.
    cleaner: StaleUploadCleaner | None = None
    # Installs lifecycle rules in the store's own configuration (S3, GCS);
    # None: the gateway's task enforces every rule.
    lifecycle: LifecycleInstaller | None = None
    # Its calls do their work on this machine (memory, a local disk), where
    # a span of each would cost more than it tells: the gateway traces only
    # the slow ones. A remote driver's calls each make a span, with the
    # requests it sends to its store beneath (backends/observer.py).
    calls_stay_local: bool = False
    # Stores each content once (a dedup bucket's layer); None: a plain bucket.
    dedup: Deduplicating | None = None
    # Reads a range of an object version it described before in one request
    # (S3, GCS), where a layer reads one object in several (compression);
    # None: open_read with the conditions pinning it does.
    version_reader: VersionReader | None = None


class UnfinishedCounter(Protocol):
    async def unfinished_uploads(self) -> tuple[int, int] | None:
        """(unfinished uploads, bytes they hold), or None if not counted."""


class LifecycleInstaller(Protocol):
    """A store that enforces lifecycle rules itself (S3's bucket lifecycle
    configuration, GCS's bucket lifecycle). The rules' prefixes are the
    gateway's; the driver puts its own key prefix before them."""

    def expresses(self, rule: LifecycleRule) -> bool:
        """Whether the store can enforce the whole rule."""

    async def install(self, rules: Sequence[LifecycleRule]) -> bool:
        """Make rules the store's rules of this bucket (the driver's prefix),
        replacing those the gateway installed before and keeping every other
        rule; whether anything changed (installing the same rules twice
        changes nothing)."""

    async def installed(self) -> list[StoreRule]:
        """Every rule the store reports, the gateway's marked managed."""
