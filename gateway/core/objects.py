"""The object operations: Head (and the lookup of an object or a prefix),
read (a gRPC Get, a signed GET or HEAD, by offset or by an HTTP-style range),
Delete and List, on domain values whatever front the request came through.

Each operation opens its target through Buckets.open, the one door, before
anything else touches the backend; the request's own rules (a negative read
limit, a page size, a delimiter's length) are checked past the door, so that a
request naming an unknown bucket or a refused key hears about that first.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.backends.base import Backend, ObjectReader
from gateway.core.buckets import Action, Buckets, Target
from gateway.core.scanning import without_pending
from gateway.domain.errors import GatewayError, Reason, invalid_argument
from gateway.domain.keys import MAX_KEY_BYTES
from gateway.domain.objects import NO_CONDITIONS, Conditions, ListPage, ListQuery, ObjectMeta

MAX_PAGE_SIZE = 1000
MAX_DELIMITER_BYTES = 64


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object and the bucket it is in, by its resolved name (the default
    bucket's name for a request that named "")."""

    bucket: str
    meta: ObjectMeta


@dataclass(frozen=True, slots=True)
class FoundPrefix:
    """A key that is no object but has objects under key + "/" (a
    directory, to a filesystem's eyes), in the bucket by its resolved name."""

    bucket: str
    key: str


@dataclass(frozen=True, slots=True)
class ReadSpec:
    """Which bytes of an object to read: offset < 0 reads the last -offset
    bytes; limit None reads to the end, 0 reads nothing."""

    bucket: str
    key: str
    offset: int = 0
    limit: int | None = None
    conditions: Conditions = NO_CONDITIONS


@dataclass(frozen=True, slots=True)
class ObjectRead:
    """An open read: the caller streams reader's chunks, then closes it."""

    bucket: str
    reader: ObjectReader


@dataclass(frozen=True, slots=True)
class ByteRange:
    """An inclusive byte range as HTTP's Range names it: first None is a
    suffix of last bytes ("-n"), last None runs to the end ("n-")."""

    first: int | None
    last: int | None


@dataclass(frozen=True, slots=True)
class RangeRead:
    """A range opened for reading, or (reader None) one the object cannot
    satisfy; size is the whole object's either way."""

    bucket: str
    reader: ObjectReader | None
    size: int


@dataclass(frozen=True, slots=True)
class ListSpec:
    bucket: str
    prefix: str = ""
    delimiter: str = ""
    start_after: str = ""
    # 0: the default, MAX_PAGE_SIZE; larger values are capped to it.
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True, slots=True)
class BucketPage:
    """A listing page and the bucket it lists, by its resolved name."""

    bucket: str
    page: ListPage


class Objects:
    """Head, read, Delete and List over the gateway's buckets.

    page_max_bytes bounds what one List page's entries add up to (the front
    knows how large a response it can send).
    """

    def __init__(self, buckets: Buckets, page_max_bytes: int | None = None) -> None:
        self._buckets = buckets
        self._page_max_bytes = page_max_bytes

    async def head(self, bucket: str, key: str, conditions: Conditions) -> StoredObject:
        target = self._buckets.open(bucket, key, Action.READ)
        meta = await target.backend.head(target.key, conditions)
        return StoredObject(target.bucket, meta)

    async def lookup(
        self, bucket: str, key: str, conditions: Conditions
    ) -> StoredObject | FoundPrefix:
        """The object at key, else the prefix key + "/" when some object lies
        under it (one List entry asked); else the Head's OBJECT_NOT_FOUND.
        The listing passes the door as a LIST of that prefix."""
        target = self._buckets.open(bucket, key, Action.READ)
        try:
            meta = await target.backend.head(target.key, conditions)
        except GatewayError as error:
            if error.reason is not Reason.OBJECT_NOT_FOUND:
                raise
            if not await self._has_objects_under(target.bucket, target.key + "/"):
                raise
            return FoundPrefix(target.bucket, target.key)
        return StoredObject(target.bucket, meta)

    async def _has_objects_under(self, bucket: str, prefix: str) -> bool:
        if len(prefix.encode()) > MAX_KEY_BYTES:
            return False  # a key under it would be longer than any key may be
        target = self._buckets.open(bucket, prefix, Action.LIST)
        query = ListQuery(page_size=1, prefix=target.key, max_bytes=self._page_max_bytes)
        return bool((await target.backend.list(query)).objects)

    async def read(self, spec: ReadSpec) -> ObjectRead:
        """Open spec's bytes (OUT_OF_RANGE past the end); close the reader."""
        readable = self.reading(spec.bucket, spec.key)
        if spec.limit is not None and spec.limit < 0:
            raise invalid_argument(f"read_limit must not be negative, got {spec.limit}")
        return await readable.read(spec.offset, spec.limit, spec.conditions)

    def reading(self, bucket: str, key: str) -> Readable:
        """Pass the door for reading key, without touching the backend yet."""
        return Readable(self._buckets.open(bucket, key, Action.READ))

    async def delete(self, bucket: str, key: str, conditions: Conditions) -> bool:
        """Whether there was an object (idempotent)."""
        target = self._buckets.open(bucket, key, Action.DELETE)
        return await target.backend.delete(target.key, conditions)

    async def list(self, spec: ListSpec) -> BucketPage:
        target = self._buckets.open(spec.bucket, spec.prefix, Action.LIST)
        if spec.page_size < 0:
            raise invalid_argument(f"page_size must not be negative, got {spec.page_size}")
        if len(spec.delimiter.encode()) > MAX_DELIMITER_BYTES:
            raise invalid_argument(f"delimiter longer than {MAX_DELIMITER_BYTES} bytes")
        page = await target.backend.list(
            ListQuery(
                page_size=min(spec.page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE),
                prefix=target.key,
                delimiter=spec.delimiter,
                start_after=spec.start_after,
                page_token=spec.page_token,
                max_bytes=self._page_max_bytes,
            )
        )
        if target.scan is not None:
            # Pending objects of a scanning bucket are nobody's to see (the
            # page may then be shorter than asked for).
            page = without_pending(target.scan, page)
        elif target.staging_prefix is not None:
            # So are a checked bucket's direct uploads awaiting FinalizeUpload.
            staging = target.staging_prefix
            page = ListPage(
                [meta for meta in page.objects if not meta.key.startswith(staging)],
                [prefix for prefix in page.common_prefixes if not prefix.startswith(staging)],
                page.next_page_token,
            )
        return BucketPage(target.bucket, page)


class Readable:
    """An object a request may read: its target passed the door (Objects.reading).
    Opening its bytes is a step of its own, so that a front can admit the
    transfer in between (a signed GET holds a stream slot; a refused or
    unknown object is answered before that)."""

    def __init__(self, target: Target) -> None:
        self._target = target

    async def read(self, offset: int, limit: int | None, conditions: Conditions) -> ObjectRead:
        """offset < 0 reads the last -offset bytes; limit None to the end."""
        target = self._target
        reader = await target.backend.open_read(target.key, offset, limit, conditions)
        return ObjectRead(target.bucket, reader)

    async def read_range(self, wanted: ByteRange | None) -> RangeRead:
        """Open an HTTP-style range (None: the whole object). A range that
        starts at or past the end, or the empty suffix "-0", is unsatisfiable."""
        target = self._target
        reader, size = await _open_range(target.backend, target.key, wanted)
        return RangeRead(target.bucket, reader, size)


async def _open_range(
    backend: Backend, key: str, wanted: ByteRange | None
) -> tuple[ObjectReader | None, int]:
    """(reader, object size); reader None when the range is unsatisfiable."""
    if wanted is None:
        reader = await backend.open_read(key, 0, None, NO_CONDITIONS)
        return reader, reader.meta.size
    first, last = wanted.first, wanted.last
    if first is None:
        assert last is not None
        # "-0" is never satisfiable; open nothing just to learn the size.
        reader = await backend.open_read(
            key, -last if last else 0, None if last else 0, NO_CONDITIONS
        )
    else:
        try:
            limit = None if last is None else last - first + 1
            reader = await backend.open_read(key, first, limit, NO_CONDITIONS)
        except GatewayError as exc:
            if exc.reason != Reason.INVALID_RANGE:
                raise
            known = exc.metadata.get("size")
            return None, int(known) if known is not None else (await backend.head(key)).size
    size = reader.meta.size
    if reader.start >= size or (first is None and not last):
        await reader.close()
        return None, size
    return reader, size
