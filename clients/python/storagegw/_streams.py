"""Upload and download stream logic shared by both clients (no I/O here).

PutStream builds the Put request messages; GetStreamVerifier checks the Get
responses; ReaderState is the buffering shared by the sync and async readers.
"""

from __future__ import annotations

from storagegw._common import DEFAULT_CHUNK_SIZE, check_chunk_size
from storagegw._crc32c import Buffer, crc32c, crc32c_within
from storagegw._digests import ObjectDigest
from storagegw._types import ByteRange, ObjectInfo
from storagegw._wire import PutMessage, encode_put_chunk, locate_get_chunk
from storagegw.errors import ChecksumMismatch, Internal, SizeMismatch
from storagegw.v1 import storage_pb2

__all__ = ["SMALL_PUT", "GetMessage", "GetStreamVerifier", "PutStream", "ReaderState"]

# A Get response as received (serialized: see _wire.get_method) or parsed.
GetMessage = storage_pb2.GetResponse | bytes
# Objects declared smaller than this go in a single Put message (PutStream).
SMALL_PUT = 64 * 1024


class PutStream:
    """Turns byte blocks of any size into a Put request stream.

    start() gives the first message (the spec alone, so the gateway can
    reject a bad key or failed precondition before any data flows); feed()
    re-cuts the blocks into chunk_size chunks, each with its CRC32C, as
    serialized messages (see _wire); finish()
    gives the last message with the rest of the data, the whole-object CRC32C
    (and SHA-256, computed only when the spec asks the gateway for one,
    compute_sha256: the client asks only to have its own checked), and
    finish_write.

    An object declared smaller than SMALL_PUT goes as that one last message,
    spec included, and start() gives None: a message less costs both ends
    more than sending its few bytes before a refusal could arrive. Should
    its source turn out larger, the spec goes first after all.
    """

    def __init__(self, spec: storage_pb2.PutSpec, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.spec = spec
        self.chunk_size = check_chunk_size(chunk_size)
        self._pending = bytearray()
        self._digest = ObjectDigest(sha256=spec.compute_sha256)
        self._finished = False
        # The spec is still to be sent, with the first data message or the last.
        self._spec_deferred = False

    @property
    def size(self) -> int:
        """Bytes put into messages so far."""
        return self._digest.size

    def start(self) -> storage_pb2.PutRequest | None:
        """The spec's message; None when it goes with the data (SMALL_PUT)."""
        if self.spec.HasField("size") and self.spec.size < SMALL_PUT:
            self._spec_deferred = True
            return None
        return storage_pb2.PutRequest(spec=self.spec)

    def feed(self, block: Buffer) -> list[PutMessage]:
        requests = self._feed(block)
        if requests and self._spec_deferred:
            # More data than the spec declared: the spec goes first after all.
            self._spec_deferred = False
            requests.insert(0, storage_pb2.PutRequest(spec=self.spec))
        return requests

    def _feed(self, block: Buffer) -> list[PutMessage]:
        if self._finished:
            raise RuntimeError("PutStream.feed() after finish()")
        if not self._pending and isinstance(block, bytes) and len(block) == self.chunk_size:
            return [self._data_message(block)]  # the common case needs no copy
        requests: list[PutMessage] = []
        view = memoryview(block).cast("B")
        if self._pending:
            taken = self.chunk_size - len(self._pending)
            self._pending += view[:taken]
            view = view[taken:]
            if len(self._pending) < self.chunk_size:
                return []
            requests.append(self._data_message(bytes(self._pending)))
            self._pending.clear()
        while len(view) >= self.chunk_size:
            requests.append(self._data_message(view[: self.chunk_size].tobytes()))
            view = view[self.chunk_size :]
        self._pending += view
        return requests

    def finish(self) -> storage_pb2.PutRequest:
        if self._finished:
            raise RuntimeError("PutStream.finish() called twice")
        if self._spec_deferred:
            # The whole object in one message: the first, so at offset 0.
            self._spec_deferred = False
            request = storage_pb2.PutRequest(spec=self.spec)
        else:
            request = storage_pb2.PutRequest(write_offset=self.size)
        if self._pending:
            content = bytes(self._pending)
            request.chunk.content = content
            request.chunk.crc32c = self._count(content)
        self._pending.clear()
        self._finished = True
        request.object_checksums.CopyFrom(self._digest.checksums())
        request.finish_write = True
        return request

    def _count(self, content: bytes) -> int:
        """Count `content` in the object's digest; its CRC32C."""
        chunk_crc = crc32c(content)
        self._digest.update(self.size, content, chunk_crc)
        return chunk_crc

    def _data_message(self, content: bytes) -> bytes:
        offset = self.size
        return encode_put_chunk(offset, content, self._count(content))

    def object_info(self, response: storage_pb2.PutResponse) -> ObjectInfo:
        """The stored object, after checking it is what this stream sent."""
        info = ObjectInfo.from_proto(response.object)
        if not self._finished:
            return info
        return self._digest.check(info, "upload verification failed")


# ---------------------------------------------------------------- downloads


class GetStreamVerifier:
    """Checks a Get response stream as it arrives.

    accept() returns each chunk's data once its CRC32C matches; finish()
    checks that the full range arrived and, when the whole object was read,
    that its CRC32C equals the one in ObjectInfo, and its SHA-256 too with
    sha256=True (verify_sha256: the bytes are hashed as they arrive). Any
    mismatch is raised as ChecksumMismatch or SizeMismatch.

    With a `digest`, each verified chunk is counted in it at its offset in
    the object instead, and the whole-object check is its owner's: a
    download resumed across Get streams reads every byte once (see
    _resumable.DownloadResume).
    """

    def __init__(
        self, key: str, digest: ObjectDigest | None = None, *, sha256: bool = False
    ) -> None:
        self.key = key
        self._sha256 = sha256
        self.info: ObjectInfo | None = None
        self.content_range: ByteRange | None = None
        self.received = 0
        self._shared_digest = digest is not None
        self._digest = digest

    def accept(self, response: storage_pb2.GetResponse) -> bytes:
        if self.info is None:
            self._start(response)
        if not response.HasField("chunk"):
            return b""
        sent = response.chunk.crc32c if response.chunk.HasField("crc32c") else None
        return self.accept_chunk(response.chunk.content, sent)

    def accept_chunk(self, content: bytes, sent_crc: int | None) -> bytes:
        """A data message's content and the CRC32C sent with it (None: none)."""
        offset = self._offset()
        if sent_crc is None:
            raise self._checksum_error(f"the chunk at offset {offset} has no crc32c")
        actual = crc32c(content)
        if actual != sent_crc:
            raise self._mismatch(offset, sent_crc, actual)
        self._count(offset, content, actual)
        return content

    def accept_within(self, message: bytes, start: int, end: int, sent_crc: int) -> memoryview:
        """accept_chunk for the content at message[start:end], checked and
        returned in place: copying 1 MiB out of each message (and allocating
        for it) cost more than the checks."""
        offset = self._offset()
        if not crc32c_within(message, start, end, sent_crc):
            # Computed over the copied chunk too, for the error to say what it was.
            raise self._mismatch(offset, sent_crc, crc32c(message[start:end]))
        content = memoryview(message)[start:end]
        self._count(offset, content, sent_crc)
        return content

    def _mismatch(self, offset: int, sent_crc: int, actual: int) -> ChecksumMismatch:
        return self._checksum_error(
            f"crc32c mismatch in the chunk at offset {offset}: "
            f"sent {sent_crc:08x}, computed {actual:08x}"
        )

    def _offset(self) -> int:
        """The object offset of the next chunk (raises before the first message)."""
        if self.info is None or self.content_range is None:
            raise Internal(f"the Get stream for {self.key!r} did not start with the object")
        return self.content_range.start + self.received

    def _count(self, offset: int, content: Buffer, actual: int) -> None:
        assert self.content_range is not None
        self.received += len(content)
        if self.received > self.content_range.length:
            raise self._size_error()
        if self._digest is not None:
            self._digest.update(offset, content, actual)

    def finish(self) -> ObjectInfo:
        if self.info is None or self.content_range is None:
            raise Internal(f"the Get stream for {self.key!r} ended before any message")
        if self.received != self.content_range.length:
            raise self._size_error()
        if self._digest is not None and not self._shared_digest:
            digest = self._digest
            if self.info.crc32c is not None and digest.crc32c != self.info.crc32c:
                raise self._checksum_error(
                    f"crc32c mismatch: object has {self.info.crc32c:08x}, "
                    f"received data has {digest.crc32c:08x}"
                )
            if digest.sha256 is not None and digest.sha256 != self.info.sha256:
                raise self._checksum_error("sha256 mismatch between object and received data")
        return self.info

    def _start(self, response: storage_pb2.GetResponse) -> None:
        if not response.HasField("object"):
            raise Internal(f"the Get stream for {self.key!r} did not start with the object")
        self.info = ObjectInfo.from_proto(response.object)
        if response.HasField("content_range"):
            self.content_range = ByteRange.from_proto(response.content_range)
        else:
            self.content_range = ByteRange(0, self.info.size, self.info.size)
        if self._digest is None:
            if self.content_range.is_whole_object:
                self._digest = ObjectDigest(sha256=self._sha256 and self.info.sha256 is not None)
        elif self.content_range.start > self._digest.end:
            # A shared digest counts bytes in order: this stream skips some.
            raise Internal(
                f"the Get stream for {self.key!r} starts at {self.content_range.start}, "
                f"after the {self._digest.end} bytes received so far"
            )

    def _checksum_error(self, detail: str) -> ChecksumMismatch:
        return ChecksumMismatch(
            f"download of {self.key!r} corrupted: {detail}",
            reason="CHECKSUM_MISMATCH",
            metadata={"key": self.key, "side": "client"},
        )

    def _size_error(self) -> SizeMismatch:
        expected = self.content_range.length if self.content_range else 0
        return SizeMismatch(
            f"download of {self.key!r}: expected {expected} bytes, received {self.received}",
            reason="SIZE_MISMATCH",
            metadata={"key": self.key, "side": "client"},
        )


# ---------------------------------------------------------------- readers


class ReaderState:
    """A streaming reader's state between reads, whatever does its I/O.

    Holds the verifier, bytes received but not yet returned, and whether the
    stream has ended (and so has been verified as a whole).
    """

    def __init__(
        self, key: str, digest: ObjectDigest | None = None, *, sha256: bool = False
    ) -> None:
        self.verifier = GetStreamVerifier(key, digest, sha256=sha256)
        self.buffer = bytearray()
        self.ended = False

    @property
    def info(self) -> ObjectInfo:
        if self.verifier.info is None:
            raise RuntimeError("the reader has not received the object yet")
        return self.verifier.info

    @property
    def content_range(self) -> ByteRange:
        if self.verifier.content_range is None:
            raise RuntimeError("the reader has not received the object yet")
        return self.verifier.content_range

    def accept(self, response: GetMessage | None) -> Buffer | None:
        """Verified data from one response, or None once the stream has ended:
        bytes, or a memoryview of the received message (see accept_within).

        A response comes serialized (see _wire.get_method) or parsed. Pass
        None when the stream ends: the whole range is then verified.
        """
        if response is None:
            if not self.ended:
                self.verifier.finish()
                self.ended = True
            return None
        if isinstance(response, bytes):
            located = locate_get_chunk(response)
            if located is not None:
                return self.verifier.accept_within(response, *located)
            response = storage_pb2.GetResponse.FromString(response)
        return self.verifier.accept(response)

    def chunk_bound(self, response: GetMessage | None) -> int:
        """At most how many bytes accept(response) checksums: the message's
        size, or the range's length (reading the chunk itself would copy it)."""
        if isinstance(response, bytes):
            return len(response)
        if response is None or not response.HasField("chunk"):
            return 0
        if self.verifier.content_range is not None:
            return self.verifier.content_range.length
        if response.HasField("content_range"):
            return ByteRange.from_proto(response.content_range).length
        return response.object.size

    def take_buffered(self, size: int = -1) -> bytes:
        """Up to `size` buffered bytes (all of them when size < 0)."""
        if size < 0 or size >= len(self.buffer):
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:size])
            del self.buffer[:size]
        return data
