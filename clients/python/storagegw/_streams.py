"""Upload and download stream logic shared by both clients (no I/O here).

PutStream builds the Put request messages; GetStreamVerifier checks the Get
responses; ReaderState is the buffering shared by the sync and async readers.
"""

from __future__ import annotations

import hashlib

from storagegw._common import DEFAULT_CHUNK_SIZE, check_chunk_size
from storagegw._crc32c import Buffer, Crc32cAccumulator, crc32c
from storagegw._types import ByteRange, ObjectInfo
from storagegw.errors import ChecksumMismatch, Internal, SizeMismatch
from storagegw.v1 import storage_pb2

__all__ = ["GetStreamVerifier", "PutStream", "ReaderState", "check_stored"]


class PutStream:
    """Turns byte blocks of any size into a Put request stream.

    start() gives the first message (the spec alone, so the gateway can
    reject a bad key or failed precondition before any data flows); feed()
    re-cuts the blocks into chunk_size chunks, each with its CRC32C; finish()
    gives the last message with the rest of the data, the whole-object CRC32C
    and SHA-256, and finish_write.
    """

    def __init__(self, spec: storage_pb2.PutSpec, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.spec = spec
        self.chunk_size = check_chunk_size(chunk_size)
        self._pending = bytearray()
        self._crc = Crc32cAccumulator()
        self._sha256 = hashlib.sha256()
        self._finished = False

    @property
    def size(self) -> int:
        """Bytes put into messages so far."""
        return self._crc.size

    def start(self) -> storage_pb2.PutRequest:
        return storage_pb2.PutRequest(spec=self.spec)

    def feed(self, block: Buffer) -> list[storage_pb2.PutRequest]:
        if self._finished:
            raise RuntimeError("PutStream.feed() after finish()")
        if not self._pending and isinstance(block, bytes) and len(block) == self.chunk_size:
            return [self._data_message(block)]  # the common case needs no copy
        requests = []
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
        request = self._data_message(bytes(self._pending)) if self._pending else None
        self._pending.clear()
        self._finished = True
        if request is None:
            request = storage_pb2.PutRequest(write_offset=self.size)
        request.object_checksums.crc32c = self._crc.value
        request.object_checksums.sha256 = self._sha256.digest()
        request.finish_write = True
        return request

    def _data_message(self, content: bytes) -> storage_pb2.PutRequest:
        offset = self.size
        chunk_crc = self._crc.add(content)
        self._sha256.update(content)
        return storage_pb2.PutRequest(
            write_offset=offset,
            chunk=storage_pb2.ChecksummedData(content=content, crc32c=chunk_crc),
        )

    def object_info(self, response: storage_pb2.PutResponse) -> ObjectInfo:
        """The stored object, after checking it is what this stream sent."""
        info = ObjectInfo.from_proto(response.object)
        if not self._finished:
            return info
        sha256 = self._sha256.digest()
        return check_stored(info, self.size, self._crc.value, sha256, "upload verification failed")


def check_stored(info: ObjectInfo, size: int, crc: int, sha256: bytes, what: str) -> ObjectInfo:
    """`info` if the stored object has the data's size and the data's
    checksums (those the gateway reports), else raise SizeMismatch or
    ChecksumMismatch, with `what` failed."""
    context = {"key": info.key, "side": "client"}
    if info.size != size:
        raise SizeMismatch(
            f"{what}: the gateway stored {info.size} bytes for {info.key!r}, the data has {size}",
            reason="SIZE_MISMATCH",
            metadata=context,
        )
    digests: list[tuple[str, int | bytes | None, int | bytes]] = [
        ("crc32c", info.crc32c, crc),
        ("sha256", info.sha256, sha256),
    ]
    for name, stored, computed in digests:
        if stored is not None and stored != computed:
            raise ChecksumMismatch(
                f"{what}: the gateway stored {info.key!r} with {name} {_hex(stored)}, "
                f"the data has {_hex(computed)}",
                reason="CHECKSUM_MISMATCH",
                metadata=context,
            )
    return info


def _hex(digest: int | bytes) -> str:
    return f"{digest:08x}" if isinstance(digest, int) else digest.hex()


# ---------------------------------------------------------------- downloads


class GetStreamVerifier:
    """Checks a Get response stream as it arrives.

    accept() returns each chunk's data once its CRC32C matches; finish()
    checks that the full range arrived and, when the whole object was read,
    that its CRC32C and SHA-256 equal the ones in ObjectInfo. Any mismatch is
    raised as ChecksumMismatch or SizeMismatch.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.info: ObjectInfo | None = None
        self.content_range: ByteRange | None = None
        self._crc = Crc32cAccumulator()
        self._sha256: hashlib._Hash | None = None

    @property
    def received(self) -> int:
        return self._crc.size

    def accept(self, response: storage_pb2.GetResponse) -> bytes:
        if self.info is None:
            self._start(response)
        assert self.content_range is not None
        if not response.HasField("chunk"):
            return b""
        content = response.chunk.content
        offset = self.content_range.start + self.received
        if not response.chunk.HasField("crc32c"):
            raise self._checksum_error(f"the chunk at offset {offset} has no crc32c")
        actual = crc32c(content)
        if actual != response.chunk.crc32c:
            raise self._checksum_error(
                f"crc32c mismatch in the chunk at offset {offset}: "
                f"sent {response.chunk.crc32c:08x}, computed {actual:08x}"
            )
        self._crc.add_checked(content, actual)
        if self._sha256 is not None:
            self._sha256.update(content)
        if self.received > self.content_range.length:
            raise self._size_error()
        return content

    def finish(self) -> ObjectInfo:
        if self.info is None or self.content_range is None:
            raise Internal(f"the Get stream for {self.key!r} ended before any message")
        if self.received != self.content_range.length:
            raise self._size_error()
        if self.content_range.is_whole_object:
            if self.info.crc32c is not None and self._crc.value != self.info.crc32c:
                raise self._checksum_error(
                    f"crc32c mismatch: object has {self.info.crc32c:08x}, "
                    f"received data has {self._crc.value:08x}"
                )
            if self._sha256 is not None and self._sha256.digest() != self.info.sha256:
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
        if self.content_range.is_whole_object and self.info.sha256 is not None:
            self._sha256 = hashlib.sha256()

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

    def __init__(self, key: str) -> None:
        self.verifier = GetStreamVerifier(key)
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

    def accept(self, response: storage_pb2.GetResponse | None) -> bytes | None:
        """Verified data from one response, or None once the stream has ended.

        Pass None when the stream ends: the whole range is then verified.
        """
        if response is None:
            if not self.ended:
                self.verifier.finish()
                self.ended = True
            return None
        return self.verifier.accept(response)

    def take_buffered(self, size: int = -1) -> bytes:
        """Up to `size` buffered bytes (all of them when size < 0)."""
        if size < 0 or size >= len(self.buffer):
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:size])
            del self.buffer[:size]
        return data
