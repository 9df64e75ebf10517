"""Big streams over sync channels: Put (upload) and Get (download) of one object."""

from __future__ import annotations

import hashlib

import grpc

from bench.data import BigData, BigObject
from storagegw.v1 import storage_pb2 as pb

PUT_METHOD = "/storagegw.v1.StorageService/Put"
GET_METHOD = "/storagegw.v1.StorageService/Get"
TIMEOUT = 1800.0


def _identity_stream_unary(
    channel: grpc.Channel, method: str, deserializer: object = None
) -> grpc.StreamUnaryMultiCallable:
    return channel.stream_unary(method, request_serializer=None, response_deserializer=deserializer)  # type: ignore[arg-type]


def raw_put(channel: grpc.Channel, data: BigData, size: int) -> int:
    """Stream size bytes to /raw.Raw/Upload; the bytes the server counted."""
    call = _identity_stream_unary(channel, "/raw.Raw/Upload")
    reply: bytes = call(data.raw_chunks(size), timeout=TIMEOUT)
    counted = int.from_bytes(reply, "big")
    if counted != size:
        raise RuntimeError(f"raw Upload counted {counted} bytes, sent {size}")
    return counted


def raw_get(channel: grpc.Channel, size: int) -> int:
    """Read size bytes from /raw.Raw/Download."""
    call = channel.unary_stream("/raw.Raw/Download")
    total = 0
    for message in call(size.to_bytes(8, "big"), timeout=TIMEOUT):
        total += len(message)
    if total != size:
        raise RuntimeError(f"raw Download gave {total} bytes, asked {size}")
    return total


def gateway_put(channel: grpc.Channel, data: BigData, obj: BigObject, key: str) -> int:
    """Put key with per-chunk CRC32C and whole-object CRC32C + SHA-256."""
    call = _identity_stream_unary(channel, PUT_METHOD, pb.PutResponse.FromString)
    response: pb.PutResponse = call(data.gateway_put_messages(obj, key), timeout=TIMEOUT)
    stored = response.object
    if stored.size != obj.size or stored.sha256 != obj.sha256:
        raise RuntimeError(f"gateway stored {stored.size} bytes for {key!r}, sent {obj.size}")
    return int(stored.size)


def gateway_get(channel: grpc.Channel, key: str, size: int) -> int:
    """Read all chunks of key; CRC32C is NOT verified here (we measure the server)."""
    call = channel.unary_stream(
        GET_METHOD,
        request_serializer=pb.GetRequest.SerializeToString,
        response_deserializer=pb.GetResponse.FromString,
    )
    total = 0
    for response in call(pb.GetRequest(key=key), timeout=TIMEOUT):
        total += len(response.chunk.content)
    if total != size:
        raise RuntimeError(f"gateway Get of {key!r} gave {total} bytes, expected {size}")
    return total


def gateway_get_sha256(channel: grpc.Channel, key: str, size: int) -> bytes:
    """Read all chunks of key and hash them: the SHA-256 of what was read back."""
    call = channel.unary_stream(
        GET_METHOD,
        request_serializer=pb.GetRequest.SerializeToString,
        response_deserializer=pb.GetResponse.FromString,
    )
    sha = hashlib.sha256()
    total = 0
    for response in call(pb.GetRequest(key=key), timeout=TIMEOUT):
        content = response.chunk.content
        sha.update(content)
        total += len(content)
    if total != size:
        raise RuntimeError(f"gateway Get of {key!r} gave {total} bytes, expected {size}")
    return sha.digest()
