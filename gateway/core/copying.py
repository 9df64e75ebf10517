"""Copy within one backend (the driver's own copy) or across backends (streamed
through the gateway and verified against the source's checksums)."""

from __future__ import annotations

from gateway.core.buckets import Action, Buckets
from gateway.core.ingest import Expected, store
from gateway.domain.media_types import validate_content_type
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, ObjectMeta, WriteOptions
from gateway.rpc import convert
from gateway.rpc.put_stream import checked_metadata
from storagegw.v1 import storage_pb2 as pb

COPY_CHUNK_SIZE = 1024 * 1024


async def copy(
    buckets: Buckets, request: pb.CopyRequest, *, max_size: int | None
) -> tuple[str, ObjectMeta]:
    """Copy the request's source to its destination; (destination bucket, new object)."""
    origin = buckets.open(request.source_bucket, request.source_key, Action.READ)
    target = buckets.open(request.destination_bucket, request.destination_key, Action.WRITE)
    source, source_key = origin.backend, origin.key
    bucket, destination, key = target.bucket, target.backend, target.key
    source_conditions = convert.conditions(request.source_preconditions)
    # Checked even when replace_metadata is false, where they are ignored:
    # a request is refused for what it carries, whatever it asks for.
    content_type = validate_content_type(request.content_type)
    options = WriteOptions(
        content_type=content_type or DEFAULT_CONTENT_TYPE,
        metadata=checked_metadata(request.metadata),
        conditions=convert.conditions(request.destination_preconditions),
    )
    if source is destination:
        meta = await source.copy(
            source_key, key, source_conditions, options, request.replace_metadata
        )
        return bucket, meta
    reader = await source.open_read(source_key, 0, None, source_conditions)
    try:
        original = reader.meta
        if not request.replace_metadata:
            options = WriteOptions(
                content_type=original.content_type,
                metadata=dict(original.metadata),
                conditions=options.conditions,
            )
        expected = Expected(size=original.size, crc32c=original.crc32c, sha256=original.sha256)
        meta = await store(
            destination, key, options, reader.chunks(COPY_CHUNK_SIZE), expected, max_size
        )
    finally:
        await reader.close()
    return bucket, meta
