"""The one door: every RPC and every signed-URL route reaches a backend only
through Buckets.open, whose guards see each access (bucket, key, action), in order.

The gateway, its recording guard and its spied-on drivers are tests/core/door.py's."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from gateway.core.buckets import Action
from storagegw.v1 import storage_pb2 as pb
from tests.core.door import DATA, Access, Door, started_upload, upload_segment
from tests.rpc_calls import put


def _head_of_a_prefix(door: Door) -> pb.HeadResponse:
    """Head with report_prefix of p, a prefix of bucket main (its WRITE forgotten)."""
    put(door.stub, "p/x", DATA)
    door.reset()
    response: pb.HeadResponse = door.stub.Head(pb.HeadRequest(key="p", report_prefix=True))
    assert response.is_prefix
    return response


def _resumable_put(door: Door) -> None:
    upload_id = started_upload(door)
    door.stub.Put(upload_segment(upload_id, DATA, finish=True))


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
        lambda d: d.stub.QueryUpload(pb.QueryUploadRequest(upload_id=started_upload(d))),
        [("main", "r", Action.WRITE)],
    ),
    "AbortUpload": (
        lambda d: d.stub.AbortUpload(pb.AbortUploadRequest(upload_id=started_upload(d))),
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
