"""Hand-encoded GetResponse messages and the service's handler table.

Get is the hot path: each chunk would otherwise be copied into a protobuf
message and copied again when serialized. Encoding the few fields by hand
copies the data once, in a worker thread (the one that read it, when the
driver reads in worker threads), while the previous chunk is being sent.
The encoding is the standard protobuf wire format of GetResponse (the tests
parse it with the generated class), so clients see no difference.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from gateway.backends.base import ObjectReader, encode_off_loop
from gateway.domain.checksums import crc32c
from gateway.domain.varint import varint
from storagegw.v1 import storage_pb2 as pb

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["StorageService"].full_name

SERVICE = pb.DESCRIPTOR.services_by_name["StorageService"]

# Tags: (field number << 3) | wire type (2: length-delimited, 5: 32-bit).
_GET_CHUNK = b"\x0a"  # GetResponse.chunk = 1
_GET_OBJECT = b"\x12"  # GetResponse.object = 2
_GET_RANGE = b"\x1a"  # GetResponse.content_range = 3
_DATA_CONTENT = b"\x0a"  # ChecksummedData.content = 1
_DATA_CRC32C = b"\x15"  # ChecksummedData.crc32c = 2 (fixed32)


def encode_head(info: pb.ObjectInfo, content_range: pb.ContentRange) -> bytes:
    """The fields only the first GetResponse carries."""
    obj = info.SerializeToString()
    rng = content_range.SerializeToString()
    return _GET_OBJECT + varint(len(obj)) + obj + _GET_RANGE + varint(len(rng)) + rng


def encode_chunk(data: bytes, head: bytes = b"") -> bytes:
    """A serialized GetResponse carrying data with its CRC32C (and head, if any)."""
    size = varint(len(data))
    inner = 1 + len(size) + len(data) + 5
    crc = crc32c(data).to_bytes(4, "little")
    parts = (head, _GET_CHUNK, varint(inner), _DATA_CONTENT, size, data, _DATA_CRC32C, crc)
    return b"".join(parts)


def chunk_encoder(head: bytes) -> Callable[[bytes], bytes]:
    """encode_chunk, with head on the first chunk it is given only (it is
    called for one chunk at a time, in order)."""
    pending = [head]

    def encode(data: bytes) -> bytes:
        return encode_chunk(data, pending.pop() if pending else b"")

    return encode


def reader_messages(
    reader: ObjectReader, chunk_size: int, head: bytes
) -> AsyncIterator[tuple[bytes, int]]:
    """encoded_chunks of the reader's range, each chunk read and encoded by
    the driver in one go (ObjectReader.encoded)."""
    return _ahead(
        reader.encoded(chunk_size, chunk_encoder(head)), head, total=reader.end - reader.start
    )


def encoded_chunks(chunks: AsyncIterator[bytes], head: bytes) -> AsyncIterator[tuple[bytes, int]]:
    """(GetResponse message, data bytes in it) for chunks; the next is read and
    encoded while the current one is sent, so two chunks at most are held. An
    empty range still yields one message (the head with an empty chunk)."""
    return _ahead(_encoded(chunks, chunk_encoder(head)), head)


async def _encoded(
    chunks: AsyncIterator[bytes], encode: Callable[[bytes], bytes]
) -> AsyncIterator[tuple[bytes, int]]:
    async for data in chunks:
        yield await encode_off_loop(encode, data), len(data)


async def _ahead(
    messages: AsyncIterator[tuple[bytes, int]], head: bytes, total: int | None = None
) -> AsyncIterator[tuple[bytes, int]]:
    """messages, the next one prepared while the current one is sent. With
    total (the data bytes messages hold, when known), nothing is read ahead
    once they are all prepared: a small Get's one message costs no task."""
    upcoming: asyncio.Future[tuple[bytes, int] | None] | None = None
    try:
        # The first message has nothing to overlap with.
        prepared = await anext(messages, None)
        if prepared is None:
            yield encode_chunk(b"", head), 0
            return
        prepared_bytes = 0
        while prepared is not None:
            prepared_bytes += prepared[1]
            if total is not None and prepared_bytes >= total:
                yield prepared
                prepared = await anext(messages, None)  # the end, as a rule
                continue
            upcoming = asyncio.ensure_future(anext(messages, None))
            yield prepared
            prepared = await upcoming
            upcoming = None
    finally:
        if upcoming is not None:
            upcoming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upcoming


def _serialize_get_response(response: bytes | pb.GetResponse) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


_HANDLER_FACTORIES: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler[Any, Any]]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_storage_service(servicer: object, server: grpc.aio.Server) -> None:
    """Register servicer like the generated add_..._to_server, but with Get's
    responses taken as pre-encoded bytes."""
    handlers = {}
    for method in SERVICE.methods:
        request = getattr(pb, method.input_type.name)
        response = getattr(pb, method.output_type.name)
        serialize = _serialize_get_response if method.name == "Get" else response.SerializeToString
        factory = _HANDLER_FACTORIES[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = factory(
            getattr(servicer, method.name),
            request_deserializer=request.FromString,
            response_serializer=serialize,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(SERVICE.full_name, handlers)  # type: ignore[attr-defined]
