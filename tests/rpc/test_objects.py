"""Head, Delete, Copy and preconditions, on every backend."""

from __future__ import annotations

import hashlib
import os

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.rpc_calls import call_error, get, put, put_messages

FAILED = (grpc.StatusCode.FAILED_PRECONDITION, "PRECONDITION_FAILED")


def test_head_returns_what_put_returned(stub):
    info = put(stub, "h", b"hello", spec=pb.PutSpec(key="h", content_type="text/x"))
    assert stub.Head(pb.HeadRequest(key="h")).object == info


def test_delete_is_idempotent_and_says_whether_it_existed(stub):
    put(stub, "d/x", b"1")
    assert stub.Delete(pb.DeleteRequest(key="d/x")).existed is True
    assert stub.Delete(pb.DeleteRequest(key="d/x")).existed is False
    code, _, _ = call_error(stub.Head, pb.HeadRequest(key="d/x"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert list(stub.List(pb.ListRequest(prefix="d/")).objects) == []


def test_delete_if_match(stub):
    info = put(stub, "k", b"1")
    wrong = pb.Preconditions(if_match="not-the-etag")
    assert call_error(stub.Delete, pb.DeleteRequest(key="k", preconditions=wrong))[:2] == FAILED
    assert stub.Head(pb.HeadRequest(key="k")).object.etag == info.etag  # still there
    right = pb.Preconditions(if_match=info.etag)
    assert stub.Delete(pb.DeleteRequest(key="k", preconditions=right)).existed


def test_create_only_put(stub):
    create_only = pb.PutSpec(key="once", preconditions=pb.Preconditions(if_none_match="*"))
    put(stub, "once", b"first", spec=create_only)
    code, reason, message = call_error(
        stub.Put, iter(put_messages("once", b"second", spec=create_only))
    )
    assert (code, reason) == FAILED
    assert "if_none_match" in message
    assert get(stub, "once")[1] == b"first"


def test_generation_zero_means_create_only(stub):
    spec = pb.PutSpec(key="g", preconditions=pb.Preconditions(if_generation_match=0))
    put(stub, "g", b"1", spec=spec)
    assert call_error(stub.Put, iter(put_messages("g", b"2", spec=spec)))[:2] == FAILED


def test_if_match_and_generation_match_on_put(stub):
    first = put(stub, "m", b"v1")
    stale = pb.PutSpec(key="m", preconditions=pb.Preconditions(if_match="stale"))
    assert call_error(stub.Put, iter(put_messages("m", b"v2", spec=stale)))[:2] == FAILED
    fresh = pb.PutSpec(key="m", preconditions=pb.Preconditions(if_match=first.etag))
    second = put(stub, "m", b"v2", spec=fresh)
    by_generation = pb.PutSpec(
        key="m", preconditions=pb.Preconditions(if_generation_match=first.generation)
    )
    code_reason = call_error(stub.Put, iter(put_messages("m", b"v3", spec=by_generation)))[:2]
    assert code_reason == FAILED
    by_generation.preconditions.if_generation_match = second.generation
    assert put(stub, "m", b"v3", spec=by_generation).size == 2
    assert get(stub, "m")[1] == b"v3"


def test_if_match_on_missing_object_fails(stub):
    spec = pb.PutSpec(key="new", preconditions=pb.Preconditions(if_match="anything"))
    assert call_error(stub.Put, iter(put_messages("new", b"x", spec=spec)))[:2] == FAILED
    assert call_error(stub.Head, pb.HeadRequest(key="new"))[0] == grpc.StatusCode.NOT_FOUND


def test_read_preconditions(stub):
    info = put(stub, "r", b"data")
    same = pb.Preconditions(if_none_match=info.etag)
    code, reason, _ = call_error(stub.Get, pb.GetRequest(key="r", preconditions=same))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_MODIFIED")
    other = pb.Preconditions(if_none_match="other")
    assert get(stub, "r", preconditions=other)[1] == b"data"
    wrong = pb.Preconditions(if_match="other")
    assert call_error(stub.Get, pb.GetRequest(key="r", preconditions=wrong))[:2] == FAILED
    gen = pb.Preconditions(if_generation_match=info.generation)
    assert get(stub, "r", preconditions=gen)[1] == b"data"
    not_gen = pb.Preconditions(if_generation_not_match=info.generation)
    assert call_error(stub.Head, pb.HeadRequest(key="r", preconditions=not_gen))[:2] == FAILED


def test_copy_keeps_metadata_by_default(stub):
    spec = pb.PutSpec(key="src", content_type="text/plain", metadata={"a": "1"})
    data = os.urandom(3 * 1024 * 1024 + 5)
    source = put(stub, "src", data, spec=spec)
    copied = stub.Copy(pb.CopyRequest(source_key="src", destination_key="dst/copy")).object
    assert copied.key == "dst/copy"
    assert copied.content_type == "text/plain"
    assert dict(copied.metadata) == {"a": "1"}
    assert copied.sha256 == source.sha256
    assert copied.crc32c == source.crc32c
    assert get(stub, "dst/copy")[1] == data


def test_copy_replaces_metadata(stub):
    put(stub, "src", b"x", spec=pb.PutSpec(key="src", content_type="a/b", metadata={"a": "1"}))
    request = pb.CopyRequest(
        source_key="src",
        destination_key="dst",
        replace_metadata=True,
        content_type="c/d",
        metadata={"b": "2"},
    )
    copied = stub.Copy(request).object
    assert (copied.content_type, dict(copied.metadata)) == ("c/d", {"b": "2"})


def test_copy_missing_source(stub):
    code, reason, _ = call_error(stub.Copy, pb.CopyRequest(source_key="no", destination_key="d"))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")


@pytest.mark.emulator_gap(
    "gcs",
    reason="fake-gcs-server ignores preconditions on objects.rewrite; "
    "test_gcs_emulator_gaps.py shows the gateway sends ifGenerationMatch=0",
)
def test_copy_destination_preconditions(stub):
    put(stub, "src", b"new")
    put(stub, "dst", b"old")
    request = pb.CopyRequest(
        source_key="src",
        destination_key="dst",
        destination_preconditions=pb.Preconditions(if_none_match="*"),
    )
    assert call_error(stub.Copy, request)[:2] == FAILED
    assert get(stub, "dst")[1] == b"old"


def test_copy_source_preconditions(stub):
    put(stub, "src", b"new")
    request = pb.CopyRequest(
        source_key="src",
        destination_key="dst",
        source_preconditions=pb.Preconditions(if_match="stale"),
    )
    assert call_error(stub.Copy, request)[:2] == FAILED
    assert call_error(stub.Head, pb.HeadRequest(key="dst"))[0] == grpc.StatusCode.NOT_FOUND


@pytest.fixture
def two_backends(gateway_factory, tmp_path):
    config = tmp_path / "buckets.toml"
    config.write_text(
        'default_bucket = "disk"\n'
        '[buckets.disk]\nbackend = "local"\n'
        '[buckets.ram]\nbackend = "memory"\nquota = "64MiB"\n'
    )
    running = gateway_factory(GATEWAY_CONFIG=str(config))
    with grpc.insecure_channel(running.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


def test_copy_between_backends_streams_and_verifies(two_backends):
    stub = two_backends
    data = os.urandom(5 * 1024 * 1024 + 3)
    spec = pb.PutSpec(bucket="disk", key="big", content_type="x/y", metadata={"k": "v"})
    put(stub, "big", data, spec=spec)
    request = pb.CopyRequest(
        source_bucket="disk", source_key="big", destination_bucket="ram", destination_key="c"
    )
    copied = stub.Copy(request).object
    assert copied.bucket == "ram"
    assert (copied.content_type, dict(copied.metadata)) == ("x/y", {"k": "v"})
    assert copied.sha256 == hashlib.sha256(data).digest()
    body = b"".join(r.chunk.content for r in stub.Get(pb.GetRequest(bucket="ram", key="c")))
    assert body == data
    # And back, into the default bucket (empty name).
    back = pb.CopyRequest(source_bucket="ram", source_key="c", destination_key="again")
    assert stub.Copy(back).object.bucket == "disk"


def test_copy_between_backends_replaces_metadata_when_asked(two_backends):
    stub = two_backends
    spec = pb.PutSpec(bucket="disk", key="src", content_type="x/y", metadata={"k": "v"})
    put(stub, "src", b"payload", spec=spec)
    request = pb.CopyRequest(
        source_bucket="disk",
        source_key="src",
        destination_bucket="ram",
        destination_key="dst",
        replace_metadata=True,
        content_type="text/plain",
        metadata={"new": "1"},
    )
    copied = stub.Copy(request).object
    assert (copied.content_type, dict(copied.metadata)) == ("text/plain", {"new": "1"})
    head = stub.Head(pb.HeadRequest(bucket="ram", key="dst")).object
    assert (head.content_type, dict(head.metadata)) == ("text/plain", {"new": "1"})


def test_buckets_are_isolated(two_backends):
    stub = two_backends
    put(stub, "only-on-disk", b"x", bucket="disk")
    code, _, _ = call_error(stub.Head, pb.HeadRequest(bucket="ram", key="only-on-disk"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert [o.key for o in stub.List(pb.ListRequest(bucket="ram")).objects] == []
    assert [o.bucket for o in stub.List(pb.ListRequest()).objects] == ["disk"]
