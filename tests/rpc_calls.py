"""Raw-stub helpers for tests that speak the wire protocol directly."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import google_crc32c
import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc

CHUNK = 1024 * 1024


def crc(data: bytes) -> int:
    return int(google_crc32c.value(data))


def put_messages(
    key: str,
    data: bytes,
    *,
    bucket: str = "",
    chunk_size: int = CHUNK,
    spec: pb.PutSpec | None = None,
    with_checksums: bool = True,
) -> Iterator[pb.PutRequest]:
    spec = spec or pb.PutSpec(bucket=bucket, key=key)
    yield pb.PutRequest(spec=spec)
    for offset in range(0, len(data), chunk_size):
        piece = data[offset : offset + chunk_size]
        yield pb.PutRequest(
            write_offset=offset, chunk=pb.ChecksummedData(content=piece, crc32c=crc(piece))
        )
    last = pb.PutRequest(finish_write=True)
    if with_checksums:
        last.object_checksums.crc32c = crc(data)
        last.object_checksums.sha256 = hashlib.sha256(data).digest()
    yield last


def put(
    stub: storage_pb2_grpc.StorageServiceStub, key: str, data: bytes, **kwargs: object
) -> pb.ObjectInfo:
    response: pb.PutResponse = stub.Put(put_messages(key, data, **kwargs))  # type: ignore[arg-type]
    return response.object


def get(
    stub: storage_pb2_grpc.StorageServiceStub, key: str, **fields: object
) -> tuple[list[pb.GetResponse], bytes]:
    responses = list(stub.Get(pb.GetRequest(key=key, **fields)))  # type: ignore[arg-type]
    return responses, b"".join(r.chunk.content for r in responses)


def error_reason(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """(status code, ErrorInfo reason) of a failed call; reason "" when none was sent."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return error.code(), info.reason  # type: ignore[attr-defined]
    return error.code(), ""  # type: ignore[attr-defined]


def call_error(call: object, *args: Iterable[object] | object) -> tuple[grpc.StatusCode, str, str]:
    """Invoke call(*args) expecting failure; (code, reason, message)."""
    try:
        result = call(*args)  # type: ignore[operator]
        if isinstance(result, Iterator):
            list(result)
    except grpc.RpcError as error:
        code, reason = error_reason(error)
        return code, reason, error.details()  # type: ignore[attr-defined]
    raise AssertionError("the call succeeded but an error was expected")
