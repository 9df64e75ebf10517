"""The bucket's upload policy on resumable uploads: the client's put_file, and
raw StartUpload and Put streams; the first bytes sniffed at offset 0 before
any is persisted, and a refused upload aborted."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from storagegw import Client
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import run_gateway
from tests.rpc_calls import call_error
from tests.upload_policy.file_headers import BY_NAME
from tests.upload_policy.gateways import (
    SECRET,
    KiB,
    Stub,
    assert_absent,
    assert_refused,
    error_info,
    mismatch,
    refused,
    segment,
    start,
)

# ------------------------------------------------------------ resumable uploads


@pytest.mark.parametrize("name", ["png", "elf", "html"])
def test_put_file_resumable(client: Client, tmp_path: Path, name: str) -> None:
    sample = BY_NAME[name]
    path = tmp_path / f"file{sample.suffix}"
    path.write_bytes(sample.padded(300 * KiB))
    sessions: list[str] = []
    if name == "png":
        client.put_file("up.png", path, resumable=True, content_type=sample.declared)
        assert client.get_bytes("up.png") == path.read_bytes()
    error = refused(
        client.put_file,
        "up.png",
        path,
        resumable=True,
        content_type=sample.false,
        keep_upload=True,
        on_upload_start=lambda session: sessions.append(session.upload_id),
    )
    expected = mismatch(sample, sample.false)
    assert_refused(error, "TYPE_MISMATCH", expected, grpc.StatusCode.INVALID_ARGUMENT)
    # The gateway aborted the upload (the client was told to keep it).
    (upload_id,) = sessions
    gone = refused(client.query_upload, upload_id)
    assert gone.reason == "UPLOAD_NOT_FOUND"
    if name != "png":
        assert_absent(client, "up.png")
    else:
        assert client.get_bytes("up.png") == path.read_bytes()  # the first is untouched


def test_a_first_segment_shorter_than_the_window_persists_nothing(stub: Stub) -> None:
    """The first bytes are sniffed before any is written: a stream that stops
    before the sniff window is full persists none of them, and the stream that
    sends them again (from 0) is the one checked."""
    elf = BY_NAME["elf"].padded(256 * KiB)
    upload_id = start(stub, "raw.png", "image/png")
    response: pb.PutResponse = stub.Put(segment(upload_id, elf[:100], 0, finish=False))
    assert response.persisted_size == 0
    assert not response.HasField("object")
    query = pb.QueryUploadRequest(upload_id=upload_id)
    assert stub.QueryUpload(query).persisted_size == 0
    code, reason, metadata = error_info(stub.Put, segment(upload_id, elf, 0, finish=True))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "TYPE_MISMATCH")
    assert metadata == {
        "sniffed": "application/x-executable",
        "declared": "image/png",
        "bucket": "typed",
    }
    # Refused: aborted, not left to resume.
    assert call_error(stub.QueryUpload, query)[1] == "UPLOAD_NOT_FOUND"
    assert call_error(stub.Head, pb.HeadRequest(key="raw.png"))[1] == "OBJECT_NOT_FOUND"


def test_an_allowed_upload_lands_over_several_segments(stub: Stub) -> None:
    png = BY_NAME["png"].padded(200 * KiB)
    upload_id = start(stub, "raw.png", "image/png")
    stub.Put(segment(upload_id, png[:50], 0, finish=False))
    response: pb.PutResponse = stub.Put(segment(upload_id, png[: 100 * KiB], 0, finish=False))
    persisted = response.persisted_size
    assert 0 <= persisted <= 100 * KiB
    done: pb.PutResponse = stub.Put(segment(upload_id, png, persisted, finish=True))
    assert done.object.size == len(png)
    chunks = stub.Get(pb.GetRequest(key="raw.png"))
    assert b"".join(r.chunk.content for r in chunks) == png


def test_start_upload_refuses_what_the_request_shows(stub: Stub) -> None:
    code, reason, metadata = error_info(
        stub.StartUpload,
        pb.StartUploadRequest(spec=pb.PutSpec(bucket="sized", key="u.exe")),
    )
    assert (code, reason, metadata) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "KEY_SUFFIX_NOT_ALLOWED",
        {"key": "u.exe", "allowed": ".bin, .txt"},
    )
    spec = pb.PutSpec(key="u.html", content_type="text/html")
    _, reason, _ = error_info(stub.StartUpload, pb.StartUploadRequest(spec=spec))
    assert reason == "TYPE_NOT_ALLOWED"


def test_a_resumable_upload_under_the_minimum_is_aborted(stub: Stub) -> None:
    spec = pb.PutSpec(bucket="sized", key="small.txt", metadata={"owner": "ops"})
    upload_id = stub.StartUpload(pb.StartUploadRequest(spec=spec)).upload_id
    code, reason, metadata = error_info(stub.Put, segment(upload_id, b"x" * 100, 0, finish=True))
    assert (code, reason, metadata) == (
        grpc.StatusCode.OUT_OF_RANGE,
        "OBJECT_TOO_SMALL",
        {"min_size": "1024", "size": "100"},
    )
    query = pb.QueryUploadRequest(upload_id=upload_id)
    assert call_error(stub.QueryUpload, query)[1] == "UPLOAD_NOT_FOUND"
    head = pb.HeadRequest(bucket="sized", key="small.txt")
    assert call_error(stub.Head, head)[1] == "OBJECT_NOT_FOUND"


def test_a_policy_set_while_an_upload_is_under_way_judges_its_first_bytes(
    tmp_path: Path,
) -> None:
    """The declared type is in the upload's record whatever the policy: a
    gateway with a policy that continues an upload started without one
    sniffs its first bytes against it."""
    config = tmp_path / "buckets.toml"
    config.write_text('[buckets.typed]\nbackend = "local"\n')
    env = {"GATEWAY_CONFIG": str(config), "STORAGE_URL_SECRET": SECRET}
    with (
        run_gateway(env, tmp_path / "data") as before,
        grpc.insecure_channel(before.target) as channel,
    ):
        upload_id = start(storage_pb2_grpc.StorageServiceStub(channel), "late.png", "image/png")
    config.write_text(
        '[buckets.typed]\nbackend = "local"\n'
        "[buckets.typed.upload_policy]\nrequire_type_match = true\n"
    )
    elf = BY_NAME["elf"].padded(8 * KiB)
    with (
        run_gateway(env, tmp_path / "data") as after,
        grpc.insecure_channel(after.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        _, reason, metadata = error_info(stub.Put, segment(upload_id, elf, 0, finish=True))
        assert (reason, metadata["declared"]) == ("TYPE_MISMATCH", "image/png")
        query = pb.QueryUploadRequest(upload_id=upload_id)
        assert call_error(stub.QueryUpload, query)[1] == "UPLOAD_NOT_FOUND"
