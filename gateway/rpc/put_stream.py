"""The Put stream protocol: first message carries the spec, later ones data.

Checks the shape of the stream (spec first and only once, offsets that match
the bytes received, nothing after finish_write) and each chunk's CRC32C, then
hands the bytes to gateway.core.ingest, which checks the whole object and commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from gateway.core import calllog
from gateway.core.buckets import Action, Buckets
from gateway.core.ingest import Expected, store
from gateway.domain.checksums import crc32c
from gateway.domain.errors import (
    checksum_mismatch,
    invalid_argument,
    invalid_stream,
)
from gateway.domain.media_types import validate_content_type
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, ObjectMeta, WriteOptions
from gateway.rpc import convert
from storagegw.v1 import storage_pb2 as pb

MAX_METADATA_BYTES = 8 * 1024
# The most data one Put message may carry (the proto's ChecksummedData says so).
MAX_CHUNK_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PutLimits:
    max_object_size: int | None = None


@dataclass(slots=True)
class PutResult:
    bucket: str
    meta: ObjectMeta


def expected_of(checksums: pb.ObjectChecksums, field: str) -> Expected:
    return Expected(
        crc32c=checksums.crc32c if checksums.HasField("crc32c") else None,
        sha256=convert.sha256_field(checksums.sha256, f"{field}.sha256"),
    )


def checked_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """A copy of user metadata, refused when its keys and values together
    exceed MAX_METADATA_BYTES in UTF-8 (Put, StartUpload and Copy alike)."""
    copied = dict(metadata)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in copied.items())
    if size > MAX_METADATA_BYTES:
        raise invalid_argument(
            f"user metadata is {size} bytes; at most {MAX_METADATA_BYTES} are allowed",
            size=size,
            limit=MAX_METADATA_BYTES,
        )
    return copied


def options_of(spec: pb.PutSpec) -> WriteOptions:
    metadata = checked_metadata(spec.metadata)
    content_type = validate_content_type(spec.content_type)
    if spec.HasField("size") and spec.size < 0:
        raise invalid_argument(f"declared size must not be negative, got {spec.size}")
    return WriteOptions(
        content_type=content_type or DEFAULT_CONTENT_TYPE,
        metadata=metadata,
        conditions=convert.conditions(spec.preconditions),
        size_hint=spec.size if spec.HasField("size") else None,
        storage_class=spec.storage_class,
        server_side_encryption=spec.server_side_encryption,
        kms_key_id=spec.kms_key_id,
    )


class Stream:
    """Iterates the data of a Put stream, checking its shape as it goes.

    received counts from start (a resumable upload's write_offset). With
    require_finish False a stream may end without finish_write (a resumable
    upload's segment); finished then tells whether it was set.
    """

    def __init__(
        self,
        first: pb.PutRequest,
        rest: AsyncIterator[pb.PutRequest],
        start: int = 0,
        require_finish: bool = True,
    ) -> None:
        self._first: pb.PutRequest | None = first
        self._rest = rest
        self.received = start
        self.late = Expected()
        self.finished = False
        self._require_finish = require_finish

    def _take(self, message: pb.PutRequest, is_first: bool) -> bytes:
        if not is_first and message.WhichOneof("first_message") is not None:
            raise invalid_stream("spec or upload_id sent again after the first message")
        if not is_first and message.write_offset and message.write_offset != self.received:
            raise invalid_stream(
                f"write_offset {message.write_offset} does not match the "
                f"{self.received} bytes received so far"
            )
        if message.HasField("object_checksums"):
            late = expected_of(message.object_checksums, "object_checksums")
            self.late.crc32c = late.crc32c if late.crc32c is not None else self.late.crc32c
            self.late.sha256 = late.sha256 if late.sha256 is not None else self.late.sha256
        data = message.chunk.content
        if len(data) > MAX_CHUNK_BYTES:
            raise invalid_stream(
                f"chunk of {len(data)} bytes at offset {self.received}: a Put message carries "
                f"at most {MAX_CHUNK_BYTES} bytes (2 MiB); split the data into smaller chunks"
            )
        if message.chunk.HasField("crc32c"):
            actual = crc32c(data)
            if actual != message.chunk.crc32c:
                raise checksum_mismatch(
                    f"chunk crc32c at offset {self.received}",
                    f"{message.chunk.crc32c:08x}",
                    f"{actual:08x}",
                )
        self.received += len(data)
        calllog.current().bytes = self.received
        return data

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._first is not None:
            first, self._first = self._first, None
            yield self._take(first, True)
            finished = first.finish_write
        else:
            finished = False
        async for message in self._rest:
            if finished:
                raise invalid_stream("message received after finish_write")
            data = self._take(message, False)
            finished = message.finish_write
            # Hold no copy of the chunk while waiting for the next message:
            # an idle stream must not keep its last chunk in memory.
            del message
            yield data
            del data
        self.finished = finished
        # Only an explicit finish commits: a stream that merely ends may have
        # been cut short (a message over the size limit ends it the same way).
        if not finished and self._require_finish:
            raise invalid_stream(
                "the stream ended without finish_write on its last message; nothing was stored"
            )


async def first_message(messages: AsyncIterator[pb.PutRequest]) -> pb.PutRequest:
    """The first message of a Put stream, which must carry a spec or an upload_id."""
    first = await anext(messages, None)
    if first is None:
        raise invalid_stream("empty Put stream: the first message must carry a spec")
    if first.WhichOneof("first_message") is None:
        raise invalid_stream("the first Put message must carry a spec or an upload_id")
    return first


async def receive(
    first: pb.PutRequest,
    messages: AsyncIterator[pb.PutRequest],
    buckets: Buckets,
    limits: PutLimits,
) -> PutResult:
    """Consume a plain Put stream (first carries a spec); the committed object."""
    if first.write_offset:
        raise invalid_stream(
            f"write_offset {first.write_offset} on the first message of a Put that starts "
            "an object; it must be 0"
        )
    spec = first.spec
    target = buckets.open(spec.bucket, spec.key, Action.WRITE)
    bucket, backend, key = target.bucket, target.backend, target.key
    options = options_of(spec)
    expected = expected_of(spec.expected_checksums, "expected_checksums")
    expected.size = options.size_hint
    stream = Stream(first, messages)
    meta = await store(
        backend,
        key,
        options,
        stream.chunks(),
        expected,
        max_size=limits.max_object_size,
        late_expected=stream.late,
    )
    return PutResult(bucket, meta)
