"""The one door under watch, for tests/core/test_choke_point_*.py: a real gateway with
two memory buckets ("main", the default, and "side") runs with a guard that records
every Target and refuses the ones a test names; a spy on both drivers records every
call that would read or change what they hold."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.core.buckets import Action, Target
from gateway.domain.errors import GatewayError, Reason
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway
from tests.rpc_calls import crc

REFUSAL = "refused by the test guard"
DATA = b"guarded bytes"
# Every driver method that reads or changes what a bucket holds: the
# driver's own, and its resumable uploads' (a capability, maybe another object).
OBJECT_METHODS = ("head", "open_read", "open_write", "delete", "list", "copy")
UPLOAD_METHODS = ("start_upload", "query_upload", "resume_upload", "abort_upload")

Access = tuple[str, str, Action]


@dataclass
class RecordingGuard:
    """Notes every access; refuses those in refuse with PERMISSION_DENIED."""

    refuse: set[Access] = field(default_factory=set)
    seen: list[Access] = field(default_factory=list)
    # The scope of every SIGN access (the method its URL allows).
    sign_scopes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, target: Target) -> None:
        access = (target.bucket, target.key, target.action)
        with self._lock:
            self.seen.append(access)
            if target.action is Action.SIGN:
                self.sign_scopes.append(target.scope)
        if access in self.refuse:
            raise GatewayError(Reason.PERMISSION_DENIED, REFUSAL, key=target.key)

    def take(self) -> list[Access]:
        with self._lock:
            seen, self.seen = self.seen, []
        return seen


@dataclass
class Door:
    running: RunningGateway
    stub: storage_pb2_grpc.StorageServiceStub
    http: httpx.Client
    guard: RecordingGuard
    # "bucket.method" for every driver call, in order.
    driver_calls: list[str]

    def reset(self) -> None:
        self.guard.take()
        self.driver_calls.clear()

    def sign(self, key: str, method: int, **fields: Any) -> pb.SignUrlResponse:
        """A signed URL for bucket main's key, its SIGN access forgotten."""
        signed: pb.SignUrlResponse = self.stub.SignUrl(
            pb.SignUrlRequest(key=key, method=method, **fields)
        )
        self.reset()
        return signed

    def exists(self, bucket: str, key: str) -> bool:
        """Asked of the driver itself (after a test's checks of driver_calls)."""
        try:
            self.running.run(self.running.backend(bucket).head(key))
        except GatewayError as error:
            if error.reason != Reason.OBJECT_NOT_FOUND:
                raise
            return False
        return True


def spy_on_driver(backend: Any, bucket: str, calls: list[str]) -> None:
    """Wrap the driver's methods in place: they still do all the work."""
    _spy(backend, OBJECT_METHODS, bucket, calls)
    _spy(backend.capabilities.uploads, UPLOAD_METHODS, bucket, calls)


def _spy(holder: Any, names: tuple[str, ...], bucket: str, calls: list[str]) -> None:
    for name in names:
        original = getattr(holder, name)

        async def spy(*args: Any, _name: str = name, _original: Any = original) -> Any:
            calls.append(f"{bucket}.{_name}")
            return await _original(*args)

        setattr(holder, name, spy)


def started_upload(door: Door) -> str:
    """A resumable upload of bucket main's key r, its WRITE access forgotten."""
    response: pb.StartUploadResponse = door.stub.StartUpload(
        pb.StartUploadRequest(spec=pb.PutSpec(key="r"))
    )
    door.reset()
    return response.upload_id


def upload_segment(upload_id: str, data: bytes, *, finish: bool) -> Iterator[pb.PutRequest]:
    yield pb.PutRequest(upload_id=upload_id, write_offset=0)
    yield pb.PutRequest(chunk=pb.ChecksummedData(content=data, crc32c=crc(data)))
    if finish:
        yield pb.PutRequest(finish_write=True)
