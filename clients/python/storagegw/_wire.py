"""Put data messages serialized by hand, Get data messages read by hand,
and the Put and Get methods that carry them.

Building a PutRequest copies the chunk into the message and serializing it
copies it again: about 0.35 s of CPU per GiB uploaded. A data message has a
fixed shape (write_offset, and chunk with its content and crc32c), so it is
encoded here with one copy, as the same bytes protobuf would produce;
tests/client/test_wire_messages.py parses them back. Other messages (the first,
the last with the object's checksums) stay PutRequests.

A Get data message has a fixed shape too (chunk, with its content and
crc32c): locate_get_chunk finds the content in the received bytes, which
the readers check and hand on in place (a memoryview; see
_crc32c.crc32c_within), and decode_get_chunk copies it out. Parsing it as a
GetResponse cost a copy more, and in grpc.aio about 0.6 s of CPU per GiB
(the parser's arena of each 1 MiB message is freed and grown again). Any
other message is parsed in full.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
import grpc.aio

from storagegw.v1 import storage_pb2

__all__ = [
    "GET_METHOD",
    "PUT_METHOD",
    "PutMessage",
    "decode_get_chunk",
    "encode_put_chunk",
    "get_method",
    "locate_get_chunk",
    "put_method",
    "serialize_put",
]

PUT_METHOD = "/storagegw.v1.StorageService/Put"
GET_METHOD = "/storagegw.v1.StorageService/Get"

# A PutRequest, or a data message already serialized (encode_put_chunk).
PutMessage: TypeAlias = storage_pb2.PutRequest | bytes

# Tags (field number << 3 | wire type) of the fields a data message has.
_WRITE_OFFSET = b"\x18"  # PutRequest.write_offset = 3, varint
_CHUNK = b"\x22"  # PutRequest.chunk = 4, length-delimited
_CONTENT = b"\x0a"  # ChecksummedData.content = 1, length-delimited
_CRC32C = b"\x15"  # ChecksummedData.crc32c = 2, fixed32
_GET_CHUNK = 0x0A  # GetResponse.chunk = 1, length-delimited


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


def put_one_method(channel: grpc.Channel | grpc.aio.Channel) -> Any:
    """Put as a unary call, for a stream of one message (a small object, its
    spec and data together): on the wire the same as the stream, and sent in
    one batch (no separate write that can race the end of the call)."""
    return channel.unary_unary(
        PUT_METHOD,
        request_serializer=serialize_put,
        response_deserializer=storage_pb2.PutResponse.FromString,
    )


def get_method(channel: grpc.Channel | grpc.aio.Channel) -> Any:
    """The Get multicallable of `channel` (sync or asyncio), giving each
    response message as its serialized bytes (see decode_get_chunk)."""
    return channel.unary_stream(
        GET_METHOD,
        request_serializer=storage_pb2.GetRequest.SerializeToString,
        response_deserializer=None,
    )


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def decode_get_chunk(message: bytes) -> tuple[bytes, int] | None:
    """(content, crc32c) of a serialized GetResponse that holds a chunk with
    both fields and nothing else, in field order (as protobuf, and the
    gateway, write them); None for any other message, to parse in full."""
    located = locate_get_chunk(message)
    if located is None:
        return None
    start, end, crc = located
    return message[start:end], crc


def locate_get_chunk(message: bytes) -> tuple[int, int, int] | None:
    """decode_get_chunk's answer as (start, end, crc32c): the content is
    message[start:end], left in place (a download writes it from there)."""
    try:
        if message[0] != _GET_CHUNK:
            return None
        chunk_length, position = _read_varint(message, 1)
        if position + chunk_length != len(message):
            return None
        start = end = position
        if message[position] == _CONTENT[0]:
            size, start = _read_varint(message, position + 1)
            end = start + size
        if end + 5 != len(message) or message[end] != _CRC32C[0]:
            return None
    except IndexError:
        return None
    return start, end, int.from_bytes(message[end + 1 :], "little")
