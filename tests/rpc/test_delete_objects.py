"""DeleteObjects on every driver: per-key results in request order, the 1,000
key limit, invalid and missing keys among valid ones, and a policy that
refuses some keys (which then tell nothing of whether they exist)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from storagegw.v1 import status_pb2 as wire_status
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.access_e2e.tenants import A, Session, policy_gateway
from tests.conftest import BACKENDS, backend_env
from tests.log_records import LogRecords, captured
from tests.rpc_calls import call_error, error_reason, put

MAX_KEYS = 1000


def _exists(stub: storage_pb2_grpc.StorageServiceStub, key: str, **call: object) -> bool:
    try:
        stub.Head(pb.HeadRequest(key=key), **call)  # type: ignore[arg-type]
    except grpc.RpcError as error:
        if error_reason(error) != (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND"):
            raise
        return False
    return True


def _info(status: wire_status.RpcStatus) -> error_details_pb2.ErrorInfo:
    (detail,) = status.details
    assert detail.type_url == "type.googleapis.com/google.rpc.ErrorInfo"
    return error_details_pb2.ErrorInfo.FromString(detail.value)


def _outcomes(response: pb.DeleteObjectsResponse) -> list[tuple[str, bool, str]]:
    """(key, existed, reason of its failure or "") of each result."""
    return [
        (r.key, r.existed, _info(r.status).reason if r.HasField("status") else "")
        for r in response.results
    ]


def test_deletes_each_key_and_answers_in_request_order(
    stub: storage_pb2_grpc.StorageServiceStub,
) -> None:
    for key in ("docs/a", "docs/b", "top"):
        put(stub, key, key.encode())
    response = stub.DeleteObjects(
        pb.DeleteObjectsRequest(keys=["top", "docs/missing", "docs/b", "docs/a"])
    )
    assert _outcomes(response) == [
        ("top", True, ""),
        ("docs/missing", False, ""),
        ("docs/b", True, ""),
        ("docs/a", True, ""),
    ]
    assert not any(_exists(stub, key) for key in ("docs/a", "docs/b", "top"))
    # Deleting again: nothing existed, and that is no error.
    again = stub.DeleteObjects(pb.DeleteObjectsRequest(keys=["top", "docs/a"]))
    assert _outcomes(again) == [("top", False, ""), ("docs/a", False, "")]


def test_invalid_keys_fail_alone_and_the_valid_ones_are_deleted(
    stub: storage_pb2_grpc.StorageServiceStub,
) -> None:
    put(stub, "keep/1", b"1")
    put(stub, "keep/2", b"2")
    keys = ["keep/1", "a//b", "", ".storagegw/x", "trailing/", "keep/2"]
    response = stub.DeleteObjects(pb.DeleteObjectsRequest(keys=keys))
    assert _outcomes(response) == [
        ("keep/1", True, ""),
        ("a//b", False, "INVALID_KEY"),
        ("", False, "INVALID_KEY"),
        (".storagegw/x", False, "INVALID_KEY"),
        ("trailing/", False, "INVALID_KEY"),
        ("keep/2", True, ""),
    ]
    bad = response.results[1].status
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "empty path segment" in bad.message
    assert dict(_info(bad).metadata) == {"key": "a//b"}
    assert _info(bad).domain == "storagegw"
    assert not _exists(stub, "keep/1")
    assert not _exists(stub, "keep/2")


def test_a_key_given_twice_is_answered_twice(stub: storage_pb2_grpc.StorageServiceStub) -> None:
    put(stub, "twice", b"x")
    response = stub.DeleteObjects(pb.DeleteObjectsRequest(keys=["twice", "other", "twice"]))
    assert _outcomes(response) == [("twice", True, ""), ("other", False, ""), ("twice", True, "")]


def test_a_thousand_keys_in_one_call(stub: storage_pb2_grpc.StorageServiceStub) -> None:
    stored = [f"many/{n:04d}" for n in range(0, MAX_KEYS, 50)]  # 20 of them exist
    for key in stored:
        put(stub, key, b"x")
    keys = [f"many/{n:04d}" for n in range(MAX_KEYS)]
    response = stub.DeleteObjects(pb.DeleteObjectsRequest(keys=keys))
    assert [r.key for r in response.results] == keys
    assert [r.key for r in response.results if r.existed] == stored
    assert not any(r.HasField("status") for r in response.results)
    assert list(stub.List(pb.ListRequest(prefix="many/")).objects) == []


def test_more_than_a_thousand_keys_delete_nothing(
    stub: storage_pb2_grpc.StorageServiceStub,
) -> None:
    put(stub, "many/0000", b"x")
    keys = [f"many/{n:04d}" for n in range(MAX_KEYS + 1)]
    code, reason, message = call_error(stub.DeleteObjects, pb.DeleteObjectsRequest(keys=keys))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "TOO_MANY_KEYS")
    assert "at most 1000 keys, got 1001" in message
    assert "nothing was deleted" in message
    with pytest.raises(grpc.RpcError) as raised:
        stub.DeleteObjects(pb.DeleteObjectsRequest(keys=keys))
    status = rpc_status.from_call(raised.value)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert dict(info.metadata) == {"limit": "1000", "count": "1001"}
    assert _exists(stub, "many/0000")


def test_keys_too_long_to_answer_delete_nothing(
    stub: storage_pb2_grpc.StorageServiceStub,
) -> None:
    """A key over 1,024 bytes is only INVALID_KEY; keys that add up to more
    than 1,000 keys of that length fail the call (the results repeat them)."""
    put(stub, "kept", b"x")
    long_key = "k" * 2000
    response = stub.DeleteObjects(pb.DeleteObjectsRequest(keys=[long_key, "kept"]))
    assert _outcomes(response) == [(long_key, False, "INVALID_KEY"), ("kept", True, "")]
    put(stub, "kept", b"x")
    request = pb.DeleteObjectsRequest(keys=["kept", "k" * (MAX_KEYS * 1024 - 3)])
    code, reason, message = call_error(stub.DeleteObjects, request)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert "add up to 1024001 bytes" in message
    assert _exists(stub, "kept")


def test_no_keys_is_an_invalid_argument(stub: storage_pb2_grpc.StorageServiceStub) -> None:
    code, reason, message = call_error(stub.DeleteObjects, pb.DeleteObjectsRequest())
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert "at least one key" in message


def test_an_unknown_bucket_fails_the_call(stub: storage_pb2_grpc.StorageServiceStub) -> None:
    put(stub, "k", b"x")
    request = pb.DeleteObjectsRequest(bucket="no-such-bucket", keys=["k", "a//b"])
    code, reason, _ = call_error(stub.DeleteObjects, request)
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "BUCKET_NOT_FOUND")
    assert _exists(stub, "k")


# ---------------------------------------------------------------- a policy


@pytest.fixture(params=BACKENDS)
def tenants(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A gateway on each driver with the tenants' policy (tenant A may
    delete only under tenants/tenant-a/), and raw calls to it."""
    with (
        policy_gateway(backend_env(request, request.param), tmp_path) as running,
        grpc.insecure_channel(running.target) as channel,
    ):
        yield Session(channel)


@pytest.fixture
def audit_log() -> Iterator[LogRecords]:
    with captured("storagegw.audit") as records:
        yield records


def test_keys_the_policy_refuses_are_left_and_tell_nothing(
    tenants: Session, audit_log: LogRecords
) -> None:
    stub, caller = tenants.stub, {"metadata": A.metadata}
    mine, shared = f"{A.home}doc", "shared/doc"  # A may write shared/, not delete there
    tenants.put(A, mine)
    tenants.put(A, shared)
    keys = [shared, mine, "shared/missing"]
    response = stub.DeleteObjects(pb.DeleteObjectsRequest(keys=keys), **caller)
    assert _outcomes(response) == [
        (shared, False, "ACCESS_DENIED"),
        (mine, True, ""),
        ("shared/missing", False, "ACCESS_DENIED"),
    ]
    existing, missing = response.results[0].status, response.results[2].status
    # The refusal of an object that exists and of one that does not differ
    # only by the key they name.
    assert existing.code == missing.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert existing.message.replace(shared, "K") == missing.message.replace("shared/missing", "K")
    assert dict(_info(existing).metadata) == dict(_info(missing).metadata)
    assert _info(existing).metadata["action"] == "delete"
    assert _exists(stub, shared, **caller)
    assert not _exists(stub, mine, **caller)
    # The audit trail has a line for each key, with that key's own outcome.
    lines = [r for r in audit_log.records if getattr(r, "method", None) == "DeleteObjects"]
    assert [(r.key, r.action, r.outcome, r.reason) for r in lines] == [  # type: ignore[attr-defined]
        (shared, "delete", "PERMISSION_DENIED", "ACCESS_DENIED"),
        (mine, "delete", "OK", ""),
        ("shared/missing", "delete", "PERMISSION_DENIED", "ACCESS_DENIED"),
    ]
