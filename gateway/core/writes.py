"""A new object as a request describes it (WriteSpec), checked the same way
whatever front end it came through, and the plain write: one body stored as
one object through the ingest pump (gateway.core.ingest).

A spec is checked only once its bucket and key have been (Buckets.open):
a request naming an unknown bucket or an invalid key is refused for that,
whatever else it carries, and its log line names them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gateway.core.buckets import Action, Buckets
from gateway.core.ingest import Body, Expected, Incoming, wants_sha256
from gateway.core.objects import StoredObject
from gateway.core.scanned_writes import store_checked
from gateway.core.upload_checks import upload_inspectors
from gateway.core.user_metadata import checked_metadata
from gateway.domain.errors import invalid_argument
from gateway.domain.media_types import validate_content_type
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, WriteOptions

SHA256_BYTES = 32


@dataclass(frozen=True, slots=True)
class PutLimits:
    """The gateway's limits on what one write may store."""

    max_object_size: int | None = None


@dataclass(frozen=True, slots=True)
class WriteSpec:
    """A new object as the request describes it, not checked yet: options as
    given (an empty content type means the default) and the checksums the
    client promised (the promised size is options.size_hint);
    compute_sha256: the write asks for its object's SHA-256 whatever the
    bucket's choice."""

    bucket: str
    key: str
    options: WriteOptions
    expected: Expected
    compute_sha256: bool = False


def checked_sha256(value: bytes | None, field: str) -> bytes | None:
    """A promised SHA-256 (None: not promised), which must be 32 bytes."""
    if value is not None and len(value) != SHA256_BYTES:
        raise invalid_argument(f"{field} must be 32 bytes (SHA-256), got {len(value)}")
    return value


def checked(spec: WriteSpec) -> tuple[WriteOptions, Expected]:
    """The spec's options and promises once they are valid (INVALID_ARGUMENT,
    INVALID_CONTENT_TYPE if not), with the default content type filled in."""
    options = spec.options
    metadata = checked_metadata(options.metadata)
    content_type = validate_content_type(options.content_type)
    size = options.size_hint
    if size is not None and size < 0:
        raise invalid_argument(f"declared size must not be negative, got {size}")
    # Named as the API names the field: only a Put spec carries a SHA-256.
    sha256 = checked_sha256(spec.expected.sha256, "expected_checksums.sha256")
    options = dataclasses.replace(
        options,
        content_type=content_type or DEFAULT_CONTENT_TYPE,
        metadata=metadata,
        sha256_hint=sha256,
    )
    return options, Expected(size=size, crc32c=spec.expected.crc32c, sha256=sha256)


async def write(buckets: Buckets, spec: WriteSpec, body: Body, limits: PutLimits) -> StoredObject:
    """Store body as the object spec describes; the committed object."""
    target = buckets.open(spec.bucket, spec.key, Action.WRITE)
    options, expected = checked(spec)
    inspectors = upload_inspectors(target, options.content_type, options.metadata, expected.size)
    incoming = Incoming(
        body.chunks(),
        expected,
        max_size=limits.max_object_size,
        late_expected=body.late,
        known_crc32c=lambda: body.chunk_crc32c,
        with_sha256=wants_sha256(target.sha256, requested=spec.compute_sha256, expected=expected),
        inspectors=inspectors,
    )
    meta = await store_checked(target, options, incoming)
    return StoredObject(target.bucket, meta)
