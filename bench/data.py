"""Benchmark data: big objects built from one random block, checksums computed up front.

Chunk i of an object is the 8-byte big-endian counter i followed by the
random block minus its first 8 bytes, so chunks differ but cost one memcpy
to produce. Per-chunk CRC32C and whole-object CRC32C and SHA-256 are computed
before any timed run.

Gateway Put messages are encoded to wire bytes here (spec and last message by
protobuf; each data message by concatenating a precomputed prefix, the chunk
and the CRC32C), so the driver's cost per chunk is the same single memcpy as
for the raw server: the client's protobuf cost is not charged to the gateway.
encoding_self_check() compares these bytes with protobuf's own encoding.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

import google_crc32c

from storagegw.v1 import storage_pb2 as pb

SEED = 20_260_911


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@dataclass(frozen=True)
class BigObject:
    size: int
    chunk_size: int
    chunk_crcs: list[int]
    crc32c: int
    sha256: bytes


class BigData:
    """Chunks of objects of any size, all cut from one random block."""

    def __init__(self, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self._tail = random.Random(SEED).randbytes(chunk_size)[8:]

    def chunk(self, index: int, size: int) -> bytes:
        """Chunk index of an object of size bytes."""
        content = index.to_bytes(8, "big") + self._tail
        left = size - index * self.chunk_size
        return content if left >= self.chunk_size else content[:left]

    def count(self, size: int) -> int:
        return -(-size // self.chunk_size)

    def prepare(self, size: int) -> BigObject:
        """Per-chunk and whole-object checksums (done once, before timing)."""
        crcs = []
        whole = 0
        sha = hashlib.sha256()
        for index in range(self.count(size)):
            content = self.chunk(index, size)
            crcs.append(int(google_crc32c.value(content)))
            whole = google_crc32c.extend(whole, content)
            sha.update(content)
        return BigObject(size, self.chunk_size, crcs, int(whole), sha.digest())

    def span(self, size: int, start: int, end: int) -> bytes:
        """Bytes [start, end) of an object of size bytes (e.g. one S3 part), built
        with one copy when start falls on a chunk boundary and end on one or at
        the object's end."""
        if not 0 <= start <= end <= size:
            raise ValueError(f"span [{start}, {end}) is not within {size} bytes")
        first, last = start // self.chunk_size, -(-end // self.chunk_size)
        pieces: list[bytes] = []
        for index in range(first, last):
            pieces += (index.to_bytes(8, "big"), self._tail)
        joined = b"".join(pieces)
        offset = start - first * self.chunk_size
        if offset == 0 and len(joined) == end - start:
            return joined
        return joined[offset : offset + end - start]

    def raw_chunks(self, size: int) -> Iterator[bytes]:
        for index in range(self.count(size)):
            yield self.chunk(index, size)

    def gateway_put_messages(self, obj: BigObject, key: str) -> Iterator[bytes]:
        """Wire bytes of the Put stream: spec, data chunks with CRC32C, finish."""
        yield pb.PutRequest(spec=pb.PutSpec(key=key, size=obj.size)).SerializeToString()
        for index, crc in enumerate(obj.chunk_crcs):
            yield self.data_message(index, obj.size, crc)
        last = pb.PutRequest(write_offset=obj.size, finish_write=True)
        last.object_checksums.crc32c = obj.crc32c
        last.object_checksums.sha256 = obj.sha256
        yield last.SerializeToString()

    def data_message(self, index: int, size: int, crc: int) -> bytes:
        offset = index * self.chunk_size
        length = min(self.chunk_size, size - offset)
        inner_len = 1 + len(_varint(length)) + length + 5
        head = b"\x18" + _varint(offset) if offset else b""
        head += b"\x22" + _varint(inner_len) + b"\x0a" + _varint(length)
        trailer = b"\x15" + crc.to_bytes(4, "little")
        if length == self.chunk_size:
            return b"".join((head, index.to_bytes(8, "big"), self._tail, trailer))
        return b"".join((head, self.chunk(index, size), trailer))


def encoding_self_check(data: BigData) -> None:
    """The hand-encoded data messages must equal protobuf's encoding."""
    size = 2 * data.chunk_size + 4096  # two full chunks and a partial one
    obj = data.prepare(size)
    messages = list(data.gateway_put_messages(obj, "check"))
    for index, crc in enumerate(obj.chunk_crcs):
        expected = pb.PutRequest(
            write_offset=index * data.chunk_size,
            chunk=pb.ChecksummedData(content=data.chunk(index, size), crc32c=crc),
        ).SerializeToString()
        if messages[1 + index] != expected:
            raise AssertionError(f"hand-encoded PutRequest {index} differs from protobuf's")


def small_payload(size: int) -> tuple[bytes, int, bytes]:
    """A small object's bytes, CRC32C and SHA-256."""
    payload = random.Random(SEED + 1).randbytes(size)
    return payload, int(google_crc32c.value(payload)), hashlib.sha256(payload).digest()
