"""Put data messages serialized by hand, and the Put method that sends them.

Building a PutRequest copies the chunk into the message and serializing it
copies it again: about 0.35 s of CPU per GiB uploaded. A data message has a
fixed shape (write_offset, and chunk with its content and crc32c), so it is
encoded here with one copy, as the same bytes protobuf would produce;
tests/client/test_crc32c.py parses them back. Other messages (the first, the
last with the object's checksums) stay PutRequests.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
import grpc.aio

from storagegw.v1 import storage_pb2

__all__ = ["PUT_METHOD", "PutMessage", "encode_put_chunk", "put_method", "serialize_put"]

PUT_METHOD = "/storagegw.v1.StorageService/Put"

# A PutRequest, or a data message already serialized (encode_put_chunk).
PutMessage: TypeAlias = storage_pb2.PutRequest | bytes

# Tags (field number << 3 | wire type) of the fields a data message has.
_WRITE_OFFSET = b"\x18"  # PutRequest.write_offset = 3, varint
_CHUNK = b"\x22"  # PutRequest.chunk = 4, length-delimited
_CONTENT = b"\x0a"  # ChecksummedData.content = 1, length-delimited
_CRC32C = b"\x15"  # ChecksummedData.crc32c = 2, fixed32


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_put_chunk(write_offset: int, content: bytes, crc: int) -> bytes:
    """PutRequest(write_offset=..., chunk=ChecksummedData(content=..., crc32c=...)),
    serialized: the bytes SerializeToString gives, with one copy of content."""
    content_field = _CONTENT + _varint(len(content)) if content else b""
    crc_field = _CRC32C + crc.to_bytes(4, "little")
    chunk_length = len(content_field) + len(content) + len(crc_field)
    head = _WRITE_OFFSET + _varint(write_offset) if write_offset else b""
    head += _CHUNK + _varint(chunk_length) + content_field
    return b"".join((head, content, crc_field))


def serialize_put(message: PutMessage) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


def put_method(channel: grpc.Channel | grpc.aio.Channel) -> Any:
    """The Put multicallable of `channel` (sync or asyncio), taking PutMessages."""
    return channel.stream_unary(
        PUT_METHOD,
        request_serializer=serialize_put,
        response_deserializer=storage_pb2.PutResponse.FromString,
    )
