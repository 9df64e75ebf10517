"""The one door: every RPC and every signed-URL route reaches a backend only
through Buckets.open, whose guards see each access (bucket, key, action) and
can refuse it before the backend is touched.

A real gateway with two memory buckets ("main", the default, and "side") runs with
a guard that records every Target and refuses the ones a test names; a spy on
both drivers records every call that would read or change what they hold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from gateway.core.buckets import Action, Target
from gateway.domain.errors import GatewayError, Reason
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway, run_gateway
from tests.rpc_calls import call_error, crc, put

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


def _spy_on_driver(backend: Any, bucket: str, calls: list[str]) -> None:
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


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    config = tmp_path / "buckets.toml"
    config.write_text(
        'default_bucket = "main"\n'
        '[buckets.main]\nbackend = "memory"\n[buckets.side]\nbackend = "memory"\n'
    )
    guard = RecordingGuard()
    with (
        run_gateway({"GATEWAY_CONFIG": str(config)}, tmp_path, [guard]) as running,
        grpc.insecure_channel(running.target) as channel,
        httpx.Client(timeout=30) as http,
    ):
        calls: list[str] = []
        for bucket in ("main", "side"):
            _spy_on_driver(running.backend(bucket), bucket, calls)
        door = Door(running, storage_pb2_grpc.StorageServiceStub(channel), http, guard, calls)
        put(door.stub, "k", DATA)
        door.reset()
        yield door


def _head_of_a_prefix(door: Door) -> pb.HeadResponse:
    """Head with report_prefix of p, a prefix of bucket main (its WRITE forgotten)."""
    put(door.stub, "p/x", DATA)
    door.reset()
    response: pb.HeadResponse = door.stub.Head(pb.HeadRequest(key="p", report_prefix=True))
    assert response.is_prefix
    return response


def _start(door: Door) -> str:
    """A resumable upload of bucket main's key r, its WRITE access forgotten."""
    response: pb.StartUploadResponse = door.stub.StartUpload(
        pb.StartUploadRequest(spec=pb.PutSpec(key="r"))
    )
    door.reset()
    return response.upload_id


def _segment(upload_id: str, data: bytes, *, finish: bool) -> Iterator[pb.PutRequest]:
    yield pb.PutRequest(upload_id=upload_id, write_offset=0)
    yield pb.PutRequest(chunk=pb.ChecksummedData(content=data, crc32c=crc(data)))
    if finish:
        yield pb.PutRequest(finish_write=True)


def _resumable_put(door: Door) -> None:
    upload_id = _start(door)
    door.stub.Put(_segment(upload_id, DATA, finish=True))


def _after_the_door(call: Callable[[], object]) -> None:
    """A call these unchecked memory buckets refuse once past the door."""
    with pytest.raises(grpc.RpcError) as refused:
        call()
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- every route passes the door ---------------------------------------------------

# Each RPC (by its name in the contract) or signed-URL route, what it does,
# and the accesses the guard must see, in order. Targets carry the resolved
# bucket name: "main" for a request that named the default bucket "".
ROUTES: dict[str, tuple[Callable[[Door], object], list[Access]]] = {
    "Put": (lambda d: put(d.stub, "new", DATA), [("main", "new", Action.WRITE)]),
    "Head": (lambda d: d.stub.Head(pb.HeadRequest(key="k")), [("main", "k", Action.READ)]),
    "Get": (lambda d: list(d.stub.Get(pb.GetRequest(key="k"))), [("main", "k", Action.READ)]),
    "Delete": (
        lambda d: d.stub.Delete(pb.DeleteRequest(bucket="main", key="k")),
        [("main", "k", Action.DELETE)],
    ),
    "DeleteObjects": (
        lambda d: d.stub.DeleteObjects(
            pb.DeleteObjectsRequest(bucket="main", keys=["k", "x", "k"])
        ),
        # Each key once, in request order, as a Delete of it.
        [("main", "k", Action.DELETE), ("main", "x", Action.DELETE)],
    ),
    "Head reporting a prefix": (
        _head_of_a_prefix,
        # The object is missing: its prefix is listed, through the door.
        [("main", "p", Action.READ), ("main", "p/", Action.LIST)],
    ),
    "List": (
        lambda d: d.stub.List(pb.ListRequest(bucket="side", prefix="p/")),
        [("side", "p/", Action.LIST)],
    ),
    "Copy": (
        lambda d: d.stub.Copy(
            pb.CopyRequest(source_key="k", destination_bucket="side", destination_key="c")
        ),
        [("main", "k", Action.READ), ("side", "c", Action.WRITE)],
    ),
    "SignUrl": (
        lambda d: d.stub.SignUrl(pb.SignUrlRequest(key="k", method=pb.SIGNED_METHOD_GET)),
        [("main", "k", Action.SIGN)],
    ),
    "StartUpload": (
        lambda d: d.stub.StartUpload(
            pb.StartUploadRequest(spec=pb.PutSpec(bucket="side", key="u"))
        ),
        [("side", "u", Action.WRITE)],
    ),
    "QueryUpload": (
        lambda d: d.stub.QueryUpload(pb.QueryUploadRequest(upload_id=_start(d))),
        [("main", "r", Action.WRITE)],
    ),
    "AbortUpload": (
        lambda d: d.stub.AbortUpload(pb.AbortUploadRequest(upload_id=_start(d))),
        [("main", "r", Action.WRITE)],
    ),
    "resumable Put": (_resumable_put, [("main", "r", Action.WRITE)]),
    # A write of the real key the pending name carries (then refused: these
    # buckets check nothing, so take no direct uploads).
    "FinalizeUpload": (
        lambda d: _after_the_door(
            lambda: d.stub.FinalizeUpload(
                pb.FinalizeUploadRequest(pending_upload=f".storagegw-pending/direct/{'0' * 32}/k")
            )
        ),
        [("main", "k", Action.WRITE)],
    ),
    # The prefix listed (then refused: the bucket does not scan); each object
    # is then opened as ADMIN (tests/scanning/test_direct_uploads.py).
    "ScanObjects": (
        lambda d: _after_the_door(
            lambda: d.stub.ScanObjects(pb.ScanObjectsRequest(bucket="side", prefix="p/"))
        ),
        [("side", "p/", Action.LIST)],
    ),
    # The whole bucket, as an administrative call.
    "GetLifecycle": (
        lambda d: d.stub.GetLifecycle(pb.GetLifecycleRequest(bucket="side")),
        [("side", "", Action.ADMIN)],
    ),
    # The whole bucket listed (its statistics).
    "GetBucketStats": (
        lambda d: d.stub.GetBucketStats(pb.GetBucketStatsRequest(bucket="side")),
        [("side", "", Action.LIST)],
    ),
    "signed GET": (
        lambda d: d.http.get(d.sign("k", pb.SIGNED_METHOD_GET).url).raise_for_status(),
        [("main", "k", Action.READ)],
    ),
    "signed HEAD": (
        lambda d: d.http.head(d.sign("k", pb.SIGNED_METHOD_GET).url).raise_for_status(),
        [("main", "k", Action.READ)],
    ),
    "signed PUT": (
        lambda d: d.http.put(
            d.sign("w", pb.SIGNED_METHOD_PUT).url, content=DATA
        ).raise_for_status(),
        [("main", "w", Action.WRITE)],
    ),
    "signed POST": (
        lambda d: d.http.post(
            d.sign("w", pb.SIGNED_METHOD_POST).url, files={"file": ("f", DATA)}
        ).raise_for_status(),
        [("main", "w", Action.WRITE)],
    ),
}


def test_the_routes_cover_every_rpc() -> None:
    service = pb.DESCRIPTOR.services_by_name["StorageService"]
    assert {method.name for method in service.methods} <= set(ROUTES)


@pytest.mark.parametrize("route", list(ROUTES))
def test_every_route_passes_the_door(door: Door, route: str) -> None:
    call, expected = ROUTES[route]
    call(door)
    assert door.guard.take() == expected


def test_a_copy_within_a_bucket_opens_source_and_destination(door: Door) -> None:
    door.stub.Copy(pb.CopyRequest(source_key="k", destination_key="c"))
    assert door.guard.take() == [("main", "k", Action.READ), ("main", "c", Action.WRITE)]


# --- a refusal stops the request before the backend ---------------------------------


def _refused(door: Door, call: object, request: object) -> None:
    """Make the call, expect the guard's refusal, and no driver call at all."""
    code, reason, message = call_error(call, request)
    assert (code, reason, message) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
        REFUSAL,
    )
    assert door.driver_calls == []


def test_a_refused_put_stores_nothing(door: Door) -> None:
    door.guard.refuse.add(("main", "new", Action.WRITE))
    _refused(door, door.stub.Put, _put_messages("new"))
    assert not door.exists("main", "new")


def _put_messages(key: str) -> Iterator[pb.PutRequest]:
    yield pb.PutRequest(spec=pb.PutSpec(key=key))
    yield pb.PutRequest(chunk=pb.ChecksummedData(content=DATA), finish_write=True)


def test_a_refused_delete_leaves_the_object(door: Door) -> None:
    door.guard.refuse.add(("main", "k", Action.DELETE))
    _refused(door, door.stub.Delete, pb.DeleteRequest(key="k"))
    assert door.exists("main", "k")
    # Once allowed, the same request does reach the driver (the spy sees it).
    door.guard.refuse.clear()
    door.driver_calls.clear()
    assert door.stub.Delete(pb.DeleteRequest(key="k")).existed
    assert door.driver_calls == ["main.delete"]


def test_a_refused_key_of_a_batch_is_left_and_the_others_deleted(door: Door) -> None:
    put(door.stub, "other", DATA)
    door.reset()
    door.guard.refuse.add(("main", "k", Action.DELETE))
    response = door.stub.DeleteObjects(pb.DeleteObjectsRequest(keys=["k", "other"]))
    refused, deleted = response.results
    assert (refused.key, refused.existed, refused.status.message) == ("k", False, REFUSAL)
    assert refused.status.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert (deleted.key, deleted.existed, deleted.HasField("status")) == ("other", True, False)
    assert door.driver_calls == ["main.delete"]  # the refused key reached no driver
    assert door.exists("main", "k")
    assert not door.exists("main", "other")


def test_a_refused_prefix_lookup_lists_nothing(door: Door) -> None:
    door.guard.refuse.add(("main", "missing/", Action.LIST))
    refusal = call_error(door.stub.Head, pb.HeadRequest(key="missing", report_prefix=True))
    assert refusal == (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED", REFUSAL)
    assert door.driver_calls == ["main.head"]  # the Head, and no List


@pytest.mark.parametrize(
    ("rpc", "request_", "access"),
    [
        ("Head", pb.HeadRequest(key="k"), ("main", "k", Action.READ)),
        ("Head", pb.HeadRequest(key="k", report_prefix=True), ("main", "k", Action.READ)),
        ("Get", pb.GetRequest(key="k"), ("main", "k", Action.READ)),
        ("List", pb.ListRequest(prefix="k"), ("main", "k", Action.LIST)),
        (
            "SignUrl",
            pb.SignUrlRequest(key="k", method=pb.SIGNED_METHOD_PUT),
            ("main", "k", Action.SIGN),
        ),
        (
            "StartUpload",
            pb.StartUploadRequest(spec=pb.PutSpec(key="k")),
            ("main", "k", Action.WRITE),
        ),
    ],
)
def test_a_refused_call_reaches_no_driver(
    door: Door, rpc: str, request_: object, access: Access
) -> None:
    door.guard.refuse.add(access)
    _refused(door, getattr(door.stub, rpc), request_)
    assert door.guard.take() == [access]


@pytest.mark.parametrize(
    "refused",
    [("main", "k", Action.READ), ("side", "c", Action.WRITE)],
    ids=["source", "destination"],
)
def test_a_refused_copy_writes_nothing(door: Door, refused: Access) -> None:
    door.guard.refuse.add(refused)
    request = pb.CopyRequest(source_key="k", destination_bucket="side", destination_key="c")
    _refused(door, door.stub.Copy, request)
    assert not door.exists("side", "c")


def test_refused_upload_calls_leave_the_upload_as_it_was(door: Door) -> None:
    upload_id = _start(door)
    door.guard.refuse.add(("main", "r", Action.WRITE))
    _refused(door, door.stub.QueryUpload, pb.QueryUploadRequest(upload_id=upload_id))
    _refused(door, door.stub.Put, _segment(upload_id, DATA, finish=True))
    _refused(door, door.stub.AbortUpload, pb.AbortUploadRequest(upload_id=upload_id))
    door.guard.refuse.clear()
    status: pb.QueryUploadResponse = door.stub.QueryUpload(
        pb.QueryUploadRequest(upload_id=upload_id)
    )
    assert (status.persisted_size, status.complete) == (0, False)
    assert door.driver_calls == ["main.query_upload"]  # once allowed, the spy sees it
    assert not door.exists("main", "r")


def _http_refused(door: Door, response: httpx.Response, *, body: bool = True) -> None:
    assert response.status_code == 403
    assert response.headers["X-Sgw-Reason"] == "PERMISSION_DENIED"
    if body:
        assert REFUSAL in response.text
    assert door.driver_calls == []


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_refused_signed_read_reaches_no_driver(door: Door, method: str) -> None:
    url = door.sign("k", pb.SIGNED_METHOD_GET).url
    door.guard.refuse.add(("main", "k", Action.READ))
    _http_refused(door, door.http.request(method, url), body=method == "GET")
    assert door.guard.take() == [("main", "k", Action.READ)]


def test_a_refused_signed_put_stores_nothing(door: Door) -> None:
    url = door.sign("w", pb.SIGNED_METHOD_PUT).url
    door.guard.refuse.add(("main", "w", Action.WRITE))
    _http_refused(door, door.http.put(url, content=DATA))
    assert not door.exists("main", "w")


def test_a_refused_signed_post_stores_nothing(door: Door) -> None:
    signed = door.sign("w", pb.SIGNED_METHOD_POST)
    door.guard.refuse.add(("main", "w", Action.WRITE))
    response = door.http.post(signed.url, data=signed.form_fields, files={"file": ("f", DATA)})
    _http_refused(door, response)
    assert not door.exists("main", "w")


def test_a_sign_access_names_the_method_its_url_allows(door: Door) -> None:
    """The guard learns what access the URL hands on (GET: read, PUT and POST:
    write), which a policy requires of the signer besides sign."""
    for method in (pb.SIGNED_METHOD_GET, pb.SIGNED_METHOD_PUT, pb.SIGNED_METHOD_POST):
        door.stub.SignUrl(pb.SignUrlRequest(key="k", method=method))
    assert door.guard.sign_scopes == ["GET", "PUT", "POST"]
