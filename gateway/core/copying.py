"""Copy within one backend (the driver's own copy) or across backends (streamed
through the gateway and verified against the source's checksums).

A copy keeps the source's SHA-256 when it has one, whatever the destination
bucket's choice; a source without one gets one in a bucket whose choice is
"always" only when streamed (a driver's own copy reads no byte)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.backends.base import Backend
from gateway.core.buckets import Action, Buckets, Target
from gateway.core.ingest import Expected, Incoming, wants_sha256
from gateway.core.objects import StoredObject
from gateway.core.scanned_writes import store_checked
from gateway.core.scanning import scan_status, without_reserved
from gateway.core.sniffing import SNIFF_WINDOW
from gateway.core.upload_checks import upload_inspectors
from gateway.core.user_metadata import checked_metadata
from gateway.domain.media_types import validate_content_type
from gateway.domain.objects import (
    DEFAULT_CONTENT_TYPE,
    NO_CONDITIONS,
    Conditions,
    CopyRequest,
    WriteOptions,
)

COPY_CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class CopySpec:
    """What a Copy asks for. content_type and metadata replace the source's
    only with replace_metadata (they are checked either way)."""

    source_bucket: str
    source_key: str
    destination_bucket: str
    destination_key: str
    source_conditions: Conditions = NO_CONDITIONS
    destination_conditions: Conditions = NO_CONDITIONS
    replace_metadata: bool = False
    content_type: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


async def copy(buckets: Buckets, spec: CopySpec, *, max_size: int | None) -> StoredObject:
    """Copy spec's source to its destination; the new object.

    max_size bounds an object streamed across backends (OBJECT_TOO_LARGE)."""
    origin = buckets.open(spec.source_bucket, spec.source_key, Action.READ)
    target = buckets.open(spec.destination_bucket, spec.destination_key, Action.WRITE)
    source, source_key = origin.backend, origin.key
    bucket, destination, key = target.bucket, target.backend, target.key
    # Checked even when replace_metadata is false, where they are ignored:
    # a request is refused for what it carries, whatever it asks for.
    content_type = validate_content_type(spec.content_type)
    options = WriteOptions(
        content_type=content_type or DEFAULT_CONTENT_TYPE,
        metadata=checked_metadata(spec.metadata),
        conditions=spec.destination_conditions,
    )
    request = CopyRequest(
        source_key,
        key,
        source_conditions=spec.source_conditions,
        options=options,
        replace_metadata=spec.replace_metadata,
    )
    if source is destination:
        if target.policy is not None:
            request = await _inspected_in_place(target, request, source)
        if target.scan is not None and spec.replace_metadata:
            # Scanned already, in this bucket: the copy keeps the source's
            # scan status whatever metadata it is given.
            status = scan_status(await source.head(source_key, request.source_conditions))
            metadata = {**without_reserved(options.metadata), **status}
            options = dataclasses.replace(request.options, metadata=metadata)
            request = dataclasses.replace(request, options=options)
        return StoredObject(bucket, await source.copy(request))
    reader = await source.open_read(source_key, 0, None, spec.source_conditions)
    try:
        original = reader.meta
        # What the drivers' own copies keep of the source (CopyRequest.content_of).
        content_type, metadata = request.content_of(original)
        options = WriteOptions(
            content_type=content_type, metadata=metadata, conditions=options.conditions
        )
        inspectors = upload_inspectors(target, content_type, metadata, original.size)
        expected = Expected(size=original.size, crc32c=original.crc32c, sha256=original.sha256)
        # A source's SHA-256 is checked and kept, as the drivers' own copies keep it.
        sha256 = wants_sha256(target.sha256, requested=False, expected=expected)
        chunks = reader.chunks(COPY_CHUNK_SIZE)
        incoming = Incoming(chunks, expected, max_size, with_sha256=sha256, inspectors=inspectors)
        meta = await store_checked(target, options, incoming)
    finally:
        await reader.close()
    return StoredObject(bucket, meta)


async def _inspected_in_place(target: Target, request: CopyRequest, source: Backend) -> CopyRequest:
    """A copy within one backend reads no byte, so the destination's upload
    policy (request checks with the source's size included) is shown the
    source's first bytes by a ranged read of them before
    the driver copies; the request, now pinned to the source read (its ETag),
    so that what is copied is what was checked."""
    conditions = request.source_conditions
    reader = await source.open_read(request.source_key, 0, SNIFF_WINDOW, conditions)
    try:
        original = reader.meta
        head = bytearray()
        async for chunk in reader.chunks(SNIFF_WINDOW):
            head += chunk
    finally:
        await reader.close()
    content_type, metadata = request.content_of(original)
    inspectors = upload_inspectors(target, content_type, metadata, original.size)
    for inspector in inspectors:
        if inspector.head_size:
            await inspector.check_head(bytes(head[: inspector.head_size]))
        await inspector.check_end(original.size)
    if conditions.if_match:
        return request
    pinned = dataclasses.replace(conditions, if_match=original.etag)
    return dataclasses.replace(request, source_conditions=pinned)
