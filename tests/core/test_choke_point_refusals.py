"""The one door: a guard of Buckets.open can refuse an access before the backend is
touched. A refused RPC or signed-URL route reaches no driver, stores and deletes
nothing, and leaves an upload as it was.

The gateway, its recording guard and its spied-on drivers are tests/core/door.py's."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest

from gateway.core.buckets import Action
from storagegw.v1 import storage_pb2 as pb
from tests.core.door import DATA, REFUSAL, Access, Door, started_upload, upload_segment
from tests.rpc_calls import call_error, put

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
    upload_id = started_upload(door)
    door.guard.refuse.add(("main", "r", Action.WRITE))
    _refused(door, door.stub.QueryUpload, pb.QueryUploadRequest(upload_id=upload_id))
    _refused(door, door.stub.Put, upload_segment(upload_id, DATA, finish=True))
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
