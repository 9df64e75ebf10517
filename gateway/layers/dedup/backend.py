"""DedupBackend: a bucket whose objects' bytes are stored once per SHA-256.

Each user key holds a reference (names.py) to a blob; blobs.py says how a
write secures its blob against the collector (sweep.py). Reads present a
reference as the object it stands for; an object without a reference's
pointer (stored before the bucket deduplicated) is served as it is.
"""

from __future__ import annotations

import dataclasses

from gateway.backends.base import (
    Backend,
    Capabilities,
    ForwardingWriter,
    ObjectReader,
    ObjectWriter,
)
from gateway.backends.forwarding import ForwardingBackend, ForwardingReader
from gateway.domain.dedup import DedupStats, SweepResult
from gateway.domain.errors import GatewayError, Reason, object_not_found
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
from gateway.layers.dedup import sweep
from gateway.layers.dedup.blobs import secure, within
from gateway.layers.dedup.listing import list_page
from gateway.layers.dedup.names import (
    Pointer,
    blob_key,
    presented,
    refuse_reserved,
    temp_key,
)
from gateway.layers.dedup.references import pointer_of, settle, write_reference
from gateway.layers.dedup.sweep import bucket_stats
from gateway.layers.dedup.uploads import DedupUploads

DEFAULT_GRACE_S = 3600.0
# References listed without their metadata (S3, GCS) are read this many at once.
_HEADS_AT_ONCE = 16


class DedupBackend(ForwardingBackend):
    """Backend over inner that stores each distinct content once."""

    def __init__(self, inner: Backend, grace_s: float = DEFAULT_GRACE_S) -> None:
        self.grace_s = grace_s
        caps = inner.capabilities
        uploads = None
        if caps.uploads is not None:
            uploads = DedupUploads(inner, grace_s, caps.uploads)
        # No presigner: a URL the store signs would bypass the references
        # (the gateway signs and serves URLs itself then). No mover: a
        # reference moved is the core's copy and delete.
        super().__init__(
            inner,
            Capabilities(
                uploads=uploads,
                upload_counter=caps.upload_counter,
                cleaner=caps.cleaner,
                calls_stay_local=caps.calls_stay_local,
                dedup=self,
            ),
        )

    @property
    def inner(self) -> Backend:
        """The driver holding the references and the blobs."""
        return self._inner

    async def head(self, key: str, conditions: Conditions = NO_CONDITIONS) -> ObjectMeta:
        refuse_reserved(key)
        return presented(await self.inner.head(key, conditions))

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        refuse_reserved(key)
        reference = await self.inner.head(key, conditions)
        pointer = Pointer.of(reference)
        if pointer is None:
            return await self.inner.open_read(key, offset, limit, conditions)
        try:
            reader = await self.inner.open_read(
                blob_key(pointer.sha256), offset, limit, NO_CONDITIONS
            )
        except GatewayError as error:
            if error.reason is Reason.OBJECT_NOT_FOUND:
                # Replaced or deleted (and its bytes collected) since the head.
                raise object_not_found(key=key) from None
            raise
        return PresentedReader(reader, presented(reference))

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        refuse_reserved(key)
        if options.sha256_hint is not None:
            # Bytes promised to be stored already: none is written (the pump
            # still hashes and checks every one before the commit).
            touched = await secure(self.inner, options.sha256_hint, None, fresh_s=self.grace_s / 4)
            if touched is not None:
                return KnownContentWriter(self, key, options, touched)
        temp = temp_key()
        staged = WriteOptions(size_hint=options.size_hint, storage_class=options.storage_class)
        return DedupWriter(self, key, options, temp, await self.inner.open_write(temp, staged))

    async def delete(self, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
        refuse_reserved(key)
        return await super().delete(key, conditions)

    async def list(self, query: ListQuery) -> ListPage:
        return await list_page(self.inner, query)

    async def copy(self, request: CopyRequest) -> ObjectMeta:
        """A reference copy: a new reference to the source's blob."""
        refuse_reserved(request.source_key)
        refuse_reserved(request.destination_key)
        source = await self.inner.head(request.source_key, request.source_conditions)
        pointer = Pointer.of(source)
        if pointer is None:
            return await self.inner.copy(request)
        touched = await secure(self.inner, pointer.sha256, None, fresh_s=self.grace_s / 4)
        if touched is None:
            raise GatewayError(
                Reason.OBJECT_NOT_FOUND,
                f"object {request.source_key!r} not found",
                key=request.source_key,
            )
        content_type, metadata = request.content_of(presented(source))
        options = dataclasses.replace(request.options, content_type=content_type, metadata=metadata)
        key = request.destination_key
        return await write_reference(self.inner, self.grace_s, key, pointer, options, touched)

    async def dedup_stats(self) -> DedupStats:
        return await bucket_stats(self.inner)

    async def collect_garbage(self, now: float | None = None, dry_run: bool = False) -> SweepResult:
        return await sweep.collect_garbage(self.inner, self.grace_s, now, dry_run)


class DedupWriter(ForwardingWriter[ObjectWriter]):
    """A write's bytes go to a temp object; at the commit, its SHA-256 names
    the blob they become (or that holds them already), and the reference is
    written with the write's conditions."""

    def __init__(
        self,
        layer: DedupBackend,
        key: str,
        options: WriteOptions,
        temp: str,
        writer: ObjectWriter,
    ) -> None:
        super().__init__(writer)
        self._layer = layer
        self._key = key
        self._options = options
        self._temp = temp

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        try:
            pointer = pointer_of(self._key, checksums)
            await self._writer.commit(checksums)
        except BaseException:
            await self._writer.abort()
            raise
        layer = self._layer
        return await settle(
            layer.inner, layer.grace_s, self._key, pointer, self._options, self._temp
        )


class KnownContentWriter:
    """A write of bytes the bucket holds already (their SHA-256 promised up
    front): it stores none of them and writes the reference at the commit."""

    def __init__(
        self, layer: DedupBackend, key: str, options: WriteOptions, touched: float
    ) -> None:
        self._layer = layer
        self._key = key
        self._options = options
        self._touched = touched

    async def write(self, data: bytes) -> None:
        """Nothing to store: the blob holds these bytes."""

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        layer, key = self._layer, self._key
        pointer = pointer_of(key, checksums)
        if pointer.sha256 != self._options.sha256_hint:
            raise GatewayError(Reason.INVALID_ARGUMENT, "the object's SHA-256 changed", key=key)
        touched = self._touched
        if not within(touched, layer.grace_s):
            # A long stream: secure the blob again before referencing it.
            again = await secure(layer.inner, pointer.sha256, None)
            if again is None:
                raise GatewayError(
                    Reason.BACKEND_UNAVAILABLE,
                    "the stored content was collected while this write streamed; write it again",
                    key=key,
                )
            touched = again
        options = dataclasses.replace(self._options, sha256_hint=None)
        return await write_reference(layer.inner, layer.grace_s, key, pointer, options, touched)

    async def abort(self) -> None:
        """Nothing was stored."""


class PresentedReader(ForwardingReader):
    """A blob's reader presenting the reference's object."""

    def __init__(self, reader: ObjectReader, meta: ObjectMeta) -> None:
        super().__init__(reader)
        self._meta = meta

    @property
    def meta(self) -> ObjectMeta:
        return self._meta
