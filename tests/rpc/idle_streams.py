"""Put streams that send a spec and a chunk and then go silent, opened over real
connections (grpc.aio, one task each), and what the stream-limit tests read back:
the status each stream ended with, the temp files and objects left behind."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from storagegw.v1 import storage_pb2 as pb
from tests.conftest import RunningGateway

PUT = "/storagegw.v1.StorageService/Put"
# Over the local backend's in-memory buffer (256 KiB): each stream gets a temp file.
IDLE_CHUNK = os.urandom(300 * 1024)
# Distinct connections: channels to one target otherwise share one.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def error_details(error: Any) -> tuple[str, dict[str, str], float | None]:
    """(ErrorInfo reason, its metadata, RetryInfo delay in s) of a failed call."""
    reason, metadata, retry = "", {}, None
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                hint = error_details_pb2.RetryInfo()
                detail.Unpack(hint)
                retry = hint.retry_delay.ToTimedelta().total_seconds()
    return reason, metadata, retry


def idle_put(channel: grpc.aio.Channel, key: str, first: pb.PutRequest | None = None):
    """A Put stream that sends a spec and a chunk, then nothing; the call."""
    quiet = asyncio.Event()  # never set: the client stays silent until it cancels

    async def messages():
        yield first or pb.PutRequest(spec=pb.PutSpec(key=key))
        yield pb.PutRequest(chunk=pb.ChecksummedData(content=IDLE_CHUNK))
        await quiet.wait()

    put = channel.stream_unary(
        PUT,
        request_serializer=pb.PutRequest.SerializeToString,
        response_deserializer=pb.PutResponse.FromString,
    )
    return put(messages())


async def put_outcome(call) -> tuple[grpc.StatusCode, str, dict[str, str], float | None]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return (error.code(), *error_details(error))
    return grpc.StatusCode.OK, "", {}, None


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll a state (bounded): the gateway acts on its own schedule."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def temp_files(running: RunningGateway) -> list[str]:
    tmp = Path(running.data_dir) / "default" / "tmp"
    return os.listdir(tmp) if tmp.exists() else []


def stored_objects(running: RunningGateway) -> list[str]:
    objects = Path(running.data_dir) / "default" / "objects"
    return [p.name for p in objects.rglob("*") if p.is_file()] if objects.exists() else []
