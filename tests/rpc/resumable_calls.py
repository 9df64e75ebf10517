"""Raw gRPC calls of resumable uploads (StartUpload, Put continuations,
QueryUpload) for the tests that drive them over the wire."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.rpc_calls import call_error, crc

# STORAGE_URL_SECRET of the gateways these tests start: it signs upload ids.
SECRET = "resumable-uploads-test-secret"
MiB = 1024 * 1024

Stub = storage_pb2_grpc.StorageServiceStub


def segment(
    upload_id: str,
    data: bytes,
    offset: int,
    *,
    finish: bool,
    chunk: int = MiB,
    corrupt_at: int | None = None,
) -> Iterator[pb.PutRequest]:
    """A Put stream continuing upload_id with data[offset:]; the chunk at
    corrupt_at (an offset) carries a wrong CRC32C."""
    yield pb.PutRequest(upload_id=upload_id, write_offset=offset)
    for start in range(offset, len(data), chunk):
        piece = data[start : start + chunk]
        check = crc(piece) ^ (1 if start == corrupt_at else 0)
        yield pb.PutRequest(
            write_offset=start, chunk=pb.ChecksummedData(content=piece, crc32c=check)
        )
    if finish:
        yield pb.PutRequest(finish_write=True)


def start(stub: Stub, key: str, **spec: object) -> str:
    response: pb.StartUploadResponse = stub.StartUpload(
        pb.StartUploadRequest(spec=pb.PutSpec(key=key, **spec))  # type: ignore[arg-type]
    )
    assert response.expire_time.seconds > time.time()
    return response.upload_id


def query(stub: Stub, upload_id: str) -> pb.QueryUploadResponse:
    response: pb.QueryUploadResponse = stub.QueryUpload(pb.QueryUploadRequest(upload_id=upload_id))
    return response


def put(stub: Stub, messages: Iterator[pb.PutRequest]) -> pb.PutResponse:
    response: pb.PutResponse = stub.Put(messages)
    return response


def assert_missing(stub: Stub, key: str) -> None:
    code, reason, _ = call_error(stub.Head, pb.HeadRequest(key=key))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")
