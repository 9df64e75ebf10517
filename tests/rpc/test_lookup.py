"""Head with report_prefix on every driver: object, prefix ("directory") or
nothing, exactly, in one call; and the same Head without it, unchanged."""

from __future__ import annotations

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway
from tests.rpc_calls import call_error, put

Stub = storage_pb2_grpc.StorageServiceStub


def _lookup(stub: Stub, key: str, **fields: object) -> pb.HeadResponse:
    response: pb.HeadResponse = stub.Head(pb.HeadRequest(key=key, report_prefix=True, **fields))  # type: ignore[arg-type]
    return response


def _missing(stub: Stub, key: str) -> tuple[grpc.StatusCode, str]:
    code, reason, message = call_error(stub.Head, pb.HeadRequest(key=key, report_prefix=True))
    assert repr(key) in message
    return code, reason


def test_an_object_answers_as_a_plain_head(stub: Stub) -> None:
    put(stub, "dir/file.txt", b"content")
    looked_up = _lookup(stub, "dir/file.txt")
    assert not looked_up.is_prefix
    assert looked_up.object == stub.Head(pb.HeadRequest(key="dir/file.txt")).object
    assert looked_up.object.size == len(b"content")


def test_a_key_with_objects_under_it_is_a_prefix(stub: Stub) -> None:
    put(stub, "dir/sub/deep/file", b"x")
    for key in ("dir", "dir/sub", "dir/sub/deep"):
        looked_up = _lookup(stub, key)
        assert looked_up.is_prefix, key
        assert not looked_up.HasField("object")


def test_nothing_is_not_found(stub: Stub) -> None:
    put(stub, "dir/file", b"x")
    # Neither an object nor a "directory": a key that only begins another
    # one's name ("di", "dir/fi") is no prefix.
    for key in ("nothing", "di", "dir/fi", "dir/file/more"):
        assert _missing(stub, key) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND"), key


def test_a_sibling_sorting_before_the_slash_does_not_hide_the_prefix(stub: Stub) -> None:
    """ "a/b!x" sorts before "a/b/c" ("!" < "/"): a List(prefix="a/b",
    page_size=1) would see only it and miss the directory a/b/."""
    put(stub, "a/b!x", b"sibling")
    put(stub, "a/b/c", b"child")
    first = stub.List(pb.ListRequest(prefix="a/b", page_size=1)).objects
    assert [o.key for o in first] == ["a/b!x"]  # the trap the lookup avoids
    assert _lookup(stub, "a/b").is_prefix
    assert _lookup(stub, "a/b!x").object.key == "a/b!x"
    # With only the sibling, a/b is nothing.
    stub.Delete(pb.DeleteRequest(key="a/b/c"))
    assert _missing(stub, "a/b") == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")


def test_without_report_prefix_a_prefix_is_not_found(stub: Stub) -> None:
    put(stub, "dir/file", b"x")
    code, reason, _ = call_error(stub.Head, pb.HeadRequest(key="dir"))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")


def test_an_object_wins_over_a_prefix(gateway: RunningGateway, stub: Stub) -> None:
    if gateway.backend_name in ("local", "local-zstd", "local-dedup"):
        pytest.skip("the local backend cannot hold both 'k' and 'k/x' (KEY_CONFLICT)")
    put(stub, "k", b"object")
    put(stub, "k/x", b"under it")
    looked_up = _lookup(stub, "k")
    assert (looked_up.is_prefix, looked_up.object.key) == (False, "k")


def test_an_invalid_key_is_refused(stub: Stub) -> None:
    code, reason, _ = call_error(stub.Head, pb.HeadRequest(key="a//b", report_prefix=True))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_KEY")


def test_a_key_of_the_longest_length_is_looked_up(stub: Stub) -> None:
    """key + "/" is longer than any key may be: nothing can lie under it."""
    key = "/".join(["k" * 200] * 4 + ["k" * 220])  # segments the local driver can map
    assert len(key.encode()) == 1024
    assert _missing(stub, key) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")
