"""A small in-process StorageService that fails, or corrupts data, on purpose,
for the clients' failures end to end."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterator

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.rpc_calls import crc


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, reason: str, message: str) -> None:
    info = error_details_pb2.ErrorInfo(reason=reason, domain="storagegw")
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    context.abort_with_status(rpc_status.to_status(status))


class FakeStorage(storage_pb2_grpc.StorageServiceServicer):
    """Just enough of the gateway to fail on purpose; checks each Put chunk."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.corrupt_downloads = False
        # Report a SHA-256 the data does not have: every chunk is intact,
        # only the whole-object check can tell.
        self.misreport_sha256 = False
        self.put_ended = threading.Event()

    def Put(
        self, request_iterator: Iterator[pb.PutRequest], context: grpc.ServicerContext
    ) -> pb.PutResponse:
        first = next(request_iterator)
        spec = first.spec
        if spec.preconditions.if_none_match == "*" and spec.key in self.objects:
            abort(context, grpc.StatusCode.FAILED_PRECONDITION, "PRECONDITION_FAILED", "exists")
        data, finished = bytearray(), False
        try:
            # The first message may carry data too (a small object goes in one).
            for message in itertools.chain([first], request_iterator):
                if crc(message.chunk.content) != message.chunk.crc32c:
                    abort(context, grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH", "bad chunk")
                data += message.chunk.content
                finished = message.finish_write
                if finished and message.object_checksums.crc32c != crc(bytes(data)):
                    abort(context, grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH", "bad object")
        finally:
            self.put_ended.set()
        if not finished:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STREAM", "no finish_write")
        self.objects[spec.key] = bytes(data)
        return pb.PutResponse(object=self._info(spec.key), persisted_size=len(data))

    def Get(
        self, request: pb.GetRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.GetResponse]:
        data = self._data(request.key, context)
        size = len(data)
        yield pb.GetResponse(
            object=self._info(request.key),
            content_range=pb.ContentRange(start=0, end=size, complete_length=size),
        )
        for offset in range(0, size, 1000):
            piece = data[offset : offset + 1000]
            checksum = crc(piece)
            if self.corrupt_downloads and offset >= 2000:
                piece = bytes([piece[0] ^ 0xFF]) + piece[1:]  # never equal to what was sent
            yield pb.GetResponse(chunk=pb.ChecksummedData(content=piece, crc32c=checksum))

    def Head(self, request: pb.HeadRequest, context: grpc.ServicerContext) -> pb.HeadResponse:
        self._data(request.key, context)
        return pb.HeadResponse(object=self._info(request.key))

    def _data(self, key: str, context: grpc.ServicerContext) -> bytes:
        if key not in self.objects:
            abort(
                context, grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND", f"object {key!r} not found"
            )
        return self.objects[key]

    def _info(self, key: str) -> pb.ObjectInfo:
        data = self.objects[key]
        sha256 = hashlib.sha256(data + b"!" if self.misreport_sha256 else data).digest()
        return pb.ObjectInfo(
            bucket="default", key=key, size=len(data), crc32c=crc(data), sha256=sha256
        )
