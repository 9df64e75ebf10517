"""What fake-gcs-server ignores, and proof that the gateway asks GCS for it.

The emulator does not evaluate preconditions on resumable uploads, rewrites,
deletes or reads. Those are GCS's job (the GCS driver sends them, and GCS
evaluates them atomically), so the conformance tests cannot see them fail
here. Each such case is shown twice: a test that records, through a proxy in
front of the emulator, that the gateway sends the right request (passes), and
a strict xfail for the emulator's own part (refusing it). If the emulator
learns to honour them, the xfail turns into a failure that says so.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import google_crc32c
import grpc
import httpx
import pytest
from google.api_core import exceptions as api_exceptions

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.backends.gcs_proxied import Proxied, proxied_gateway
from tests.fake_gcs_server import FakeGcsServer, emulator_client
from tests.gcs_proxy import Recorded, RecordingProxy
from tests.rpc_calls import call_error, get, put, put_messages

# Over one 4 MiB chunk (gcs_env): a resumable upload.
BIG = 4 * 1024 * 1024 + 12345
IGNORES_RESUMABLE = "fake-gcs-server ignores preconditions on resumable uploads"


@pytest.fixture
def proxied(fake_gcs: FakeGcsServer, gcs_key_file: Path, tmp_path: Path) -> Iterator[Proxied]:
    with proxied_gateway(fake_gcs, gcs_key_file, tmp_path) as proxied:
        yield proxied


def _put_with(
    stub: storage_pb2_grpc.StorageServiceStub, key: str, data: bytes, **conditions: object
) -> grpc.RpcError | None:
    spec = pb.PutSpec(key=key, preconditions=pb.Preconditions(**conditions))  # type: ignore[arg-type]
    try:
        stub.Put(put_messages(key, data, spec=spec))
    except grpc.RpcError as error:
        return error
    return None


def _session_start(proxy: RecordingProxy) -> Recorded:
    """The one resumable-upload start recorded (the object's name is in its body)."""
    (start,) = [
        r
        for r in proxy.matching("POST", "/upload/storage/v1/b/")
        if r.query.get("uploadType") == "resumable"
    ]
    return start


def test_resumable_create_only_is_sent_as_if_generation_match_0(proxied: Proxied) -> None:
    put(proxied.stub, "k", b"old")
    proxied.proxy.requests.clear()
    _put_with(proxied.stub, "k", os.urandom(BIG), if_none_match="*")
    assert _session_start(proxied.proxy).query["ifGenerationMatch"] == "0"


@pytest.mark.xfail(strict=True, reason=IGNORES_RESUMABLE)
def test_resumable_create_only_conflict_is_refused(proxied: Proxied) -> None:
    put(proxied.stub, "k", b"old")
    error = _put_with(proxied.stub, "k", os.urandom(BIG), if_none_match="*")
    assert error is not None
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert get(proxied.stub, "k")[1] == b"old"


def test_resumable_if_match_is_sent_as_the_generation(proxied: Proxied) -> None:
    first = put(proxied.stub, "k", b"old")
    put(proxied.stub, "k", b"newer")
    proxied.proxy.requests.clear()
    _put_with(proxied.stub, "k", os.urandom(BIG), if_match=first.etag)
    assert _session_start(proxied.proxy).query["ifGenerationMatch"] == str(first.generation)


@pytest.mark.xfail(strict=True, reason=IGNORES_RESUMABLE)
def test_resumable_stale_if_match_is_refused(proxied: Proxied) -> None:
    first = put(proxied.stub, "k", b"old")
    put(proxied.stub, "k", b"newer")
    error = _put_with(proxied.stub, "k", os.urandom(BIG), if_match=first.etag)
    assert error is not None
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_copy_sends_destination_and_source_generations(proxied: Proxied) -> None:
    source = put(proxied.stub, "src", b"new")
    put(proxied.stub, "dst", b"old")
    proxied.proxy.requests.clear()
    request = pb.CopyRequest(
        source_key="src",
        destination_key="dst",
        destination_preconditions=pb.Preconditions(if_none_match="*"),
    )
    # GCS refuses; the emulator copies (tests/rpc/test_objects.py xfails that).
    with contextlib.suppress(grpc.RpcError):
        proxied.stub.Copy(request)
    (rewrite,) = proxied.proxy.matching("POST", "/o/src/rewriteTo/b/")
    assert rewrite.query["ifGenerationMatch"] == "0"
    assert rewrite.query["ifSourceGenerationMatch"] == str(source.generation)


def test_conditional_delete_is_pinned_to_the_checked_generation(proxied: Proxied) -> None:
    info = put(proxied.stub, "k", b"abc")
    proxied.proxy.requests.clear()
    proxied.stub.Delete(
        pb.DeleteRequest(key="k", preconditions=pb.Preconditions(if_match=info.etag))
    )
    (delete,) = proxied.proxy.matching("DELETE", "/o/k")
    assert delete.query["ifGenerationMatch"] == str(info.generation)


@pytest.mark.xfail(strict=True, reason="fake-gcs-server ignores preconditions on deletes")
def test_emulator_refuses_a_delete_of_another_generation(proxied: Proxied) -> None:
    # What the pinning above protects against: the object replaced between the
    # gateway's check and its delete. GCS answers 412; the emulator deletes.
    info = put(proxied.stub, "k", b"abc")
    blob = emulator_client(proxied.server).bucket(proxied.bucket).blob("k")
    with pytest.raises(api_exceptions.PreconditionFailed):
        blob.delete(if_generation_match=info.generation + 1)


def test_reads_are_pinned_to_one_generation(proxied: Proxied) -> None:
    data = os.urandom(BIG)
    info = put(proxied.stub, "k", data)
    proxied.proxy.requests.clear()
    assert get(proxied.stub, "k")[1] == data
    downloads = proxied.proxy.matching("GET", "/download/storage/v1/b/")
    assert len(downloads) == 2  # one window per chunk size
    assert {r.query["generation"] for r in downloads} == {str(info.generation)}
    assert [r.headers["range"] for r in downloads] == [
        f"bytes=0-{4 * 1024 * 1024 - 1}",
        f"bytes={4 * 1024 * 1024}-{BIG - 1}",
    ]


def test_bytes_corrupted_on_the_way_to_gcs_are_detected(proxied: Proxied) -> None:
    proxied.proxy.body_filter = _flip_last_chunk
    data = os.urandom(BIG)
    code, reason, message = call_error(proxied.stub.Put, put_messages("k", data))
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH")
    assert "GCS" in message
    assert proxied.server.object_names(proxied.bucket) == []
    proxied.proxy.body_filter = None
    assert put(proxied.stub, "k", data).sha256 == hashlib.sha256(data).digest()


def _flip_last_chunk(request: Recorded, body: bytes) -> bytes:
    final = not request.headers.get("content-range", "/*").endswith("/*")
    if request.method == "PUT" and "/upload/" in request.path and final and body:
        return bytes([body[0] ^ 0xFF]) + body[1:]
    return body


def test_the_last_chunk_carries_the_crc32c_of_what_was_sent(proxied: Proxied) -> None:
    data = os.urandom(BIG)
    proxied.proxy.requests.clear()
    put(proxied.stub, "k", data)
    [last] = [
        r
        for r in proxied.proxy.requests
        if r.method == "PUT" and not r.headers.get("content-range", "/*").endswith("/*")
    ]
    expected = base64.b64encode(google_crc32c.Checksum(data).digest()).decode()
    assert last.headers["x-goog-hash"] == f"crc32c={expected}"


def _replace_with_damage(proxied: Proxied) -> bytes:
    """Store an object, then replace it with a Put damaged on the way to the
    store (DATA_LOSS); the old object's bytes."""
    old = os.urandom(1000)
    put(proxied.stub, "k", old)
    proxied.proxy.body_filter = _flip_last_chunk
    code, reason, message = call_error(proxied.stub.Put, put_messages("k", os.urandom(BIG)))
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH")
    assert "CRC32C" in message or "crc32c" in message
    proxied.proxy.body_filter = None
    return old


def test_gcs_refusing_the_damaged_last_chunk_keeps_the_old_object(proxied: Proxied) -> None:
    # The proxy checks x-goog-hash and answers GCS's 400, as GCS does.
    proxied.proxy.check_upload_hash = True
    old = _replace_with_damage(proxied)
    assert get(proxied.stub, "k")[1] == old


@pytest.mark.xfail(
    strict=True,
    reason="fake-gcs-server ignores x-goog-hash on a resumable upload's last chunk: the "
    "damaged object replaces the old one before the gateway's check deletes it",
)
def test_the_emulator_refuses_the_damaged_last_chunk(proxied: Proxied) -> None:
    old = _replace_with_damage(proxied)
    assert get(proxied.stub, "k")[1] == old


@pytest.mark.xfail(
    strict=True, reason="fake-gcs-server serves form uploads at /<bucket>, not GCS's /<bucket>/"
)
def test_emulator_takes_form_uploads_at_the_signed_post_url(proxied: Proxied) -> None:
    signed = proxied.stub.SignUrl(
        pb.SignUrlRequest(key="form", method=pb.SIGNED_METHOD_POST, content_type="text/plain")
    )
    assert signed.url.endswith(f"/{proxied.bucket}/")
    response = httpx.post(
        proxied.server.endpoint + urlsplit(signed.url).path,
        data=dict(signed.form_fields),
        files={"file": ("form", b"x")},
    )
    assert response.status_code in (200, 201, 204), response.text
