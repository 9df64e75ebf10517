"""The Put stream protocol: first message carries the spec, later ones data.

Checks the shape of the stream (spec first and only once, offsets that match
the bytes received, nothing after finish_write, chunks within the message
limit) and each chunk's CRC32C, and turns the messages into domain values:
a WriteSpec and a Body for a plain Put (gateway.core.writes), a SegmentWrite
for one continuing a resumable upload (gateway.core.uploads). The ingest
pump (gateway.core.ingest) then checks the whole object and commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.core import calllog, writes
from gateway.core.buckets import Buckets
from gateway.core.ingest import Expected
from gateway.core.objects import StoredObject
from gateway.core.uploads import SegmentWrite
from gateway.core.writes import PutLimits, WriteSpec, checked_sha256
from gateway.domain.checksums import crc32c
from gateway.domain.errors import checksum_mismatch, invalid_stream
from gateway.domain.objects import WriteOptions
from gateway.rpc import convert
from storagegw.v1 import storage_pb2 as pb

# The most data one Put message may carry (the proto's ChecksummedData says so).
MAX_CHUNK_BYTES = 2 * 1024 * 1024


def expected_of(checksums: pb.ObjectChecksums) -> Expected:
    """The checksums as sent, not checked yet (an empty sha256: not sent)."""
    return Expected(
        crc32c=convert.optional_int(checksums, "crc32c"),
        sha256=checksums.sha256 or None,
    )


def spec_of(spec: pb.PutSpec) -> WriteSpec:
    """The new object as the spec describes it; gateway.core.writes checks it
    once its bucket and key are."""
    return WriteSpec(
        bucket=spec.bucket,
        key=spec.key,
        options=WriteOptions(
            content_type=spec.content_type,
            metadata=dict(spec.metadata),
            conditions=convert.conditions(spec.preconditions),
            size_hint=convert.optional_int(spec, "size"),
            storage_class=spec.storage_class,
            server_side_encryption=spec.server_side_encryption,
            kms_key_id=spec.kms_key_id,
        ),
        expected=expected_of(spec.expected_checksums),
        compute_sha256=spec.compute_sha256,
    )


class Stream:
    """Iterates the data of a Put stream, checking its shape as it goes: the
    Body (gateway.core.ingest) of a Put.

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
        self.chunk_crc32c: int | None = None
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
            late = expected_of(message.object_checksums)
            sha256 = checked_sha256(late.sha256, "object_checksums.sha256")
            self.late.crc32c = late.crc32c if late.crc32c is not None else self.late.crc32c
            self.late.sha256 = sha256 if sha256 is not None else self.late.sha256
        data = message.chunk.content
        if len(data) > MAX_CHUNK_BYTES:
            raise invalid_stream(
                f"chunk of {len(data)} bytes at offset {self.received}: a Put message carries "
                f"at most {MAX_CHUNK_BYTES} bytes (2 MiB); split the data into smaller chunks"
            )
        self.chunk_crc32c = None
        if message.chunk.HasField("crc32c"):
            actual = crc32c(data)
            if actual != message.chunk.crc32c:
                raise checksum_mismatch(
                    checksum=f"chunk crc32c at offset {self.received}",
                    expected=f"{message.chunk.crc32c:08x}",
                    actual=f"{actual:08x}",
                )
            self.chunk_crc32c = actual
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
) -> StoredObject:
    """Consume a plain Put stream (first carries a spec); the committed object."""
    if first.write_offset:
        raise invalid_stream(
            f"write_offset {first.write_offset} on the first message of a Put that starts "
            "an object; it must be 0"
        )
    return await writes.write(buckets, spec_of(first.spec), Stream(first, messages), limits)


def segment_of(first: pb.PutRequest, messages: AsyncIterator[pb.PutRequest]) -> SegmentWrite:
    """A Put stream continuing the upload first.upload_id, as a segment of it."""
    stream = Stream(first, messages, start=first.write_offset, require_finish=False)
    return SegmentWrite(first.upload_id, first.write_offset, stream)
