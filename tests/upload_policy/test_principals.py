"""Per-principal upload policy rules on a real gateway with API keys (the
README's example bucket, on the local driver): each caller's writes are
judged by the first rule naming it, by id or by group (the access policy's
[groups] table), and a caller no rule names by the bucket's own policy,
through a gRPC Put, a resumable upload (continued by its owner or an admin),
a signed PUT and POST, and a Copy."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest

from gateway.http.server import REASON_HEADER
from storagegw import Client
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.access_e2e.tenants import Caller, api_keys_toml
from tests.conftest import RunningGateway, run_gateway
from tests.rpc_calls import error_reason
from tests.upload_policy.file_headers import BY_NAME
from tests.upload_policy.gateways import KiB, assert_absent, refused, segment

MiB = 1024 * KiB
PHOTOGRAPHER = Caller("photographer", "sgw_test-key-of-the-photographer-01")
CLERK = Caller("clerk", "sgw_test-key-of-the-clerk-0123456789")
DESIGNER = Caller("designer", "sgw_test-key-of-the-designer-012345")
VISITOR = Caller("visitor", "sgw_test-key-of-a-visitor-987654321")
OPS = Caller("ops", "sgw_test-key-of-the-operator-42")
# Everyone writes and signs anywhere; ops also continues others' uploads.
POLICY = """
[groups]
designers = ["designer"]

[[grants]]
principals = ["*"]
actions = ["read", "write", "list", "sign"]
buckets = ["*"]

[[grants]]
principals = ["ops"]
actions = ["admin"]
buckets = ["*"]
"""
CALLERS = (PHOTOGRAPHER, CLERK, DESIGNER, VISITOR, OPS)
OK = ""
# (caller, sample, size, the reason it is refused for: OK when let in). The
# README's bucket: text up to 1 MiB; photographer: images up to 5 MiB;
# clerk: PDFs (up to the bucket's 1 MiB); the designers group: PNGs.
CASES = [
    (PHOTOGRAPHER, "png", 4 * KiB, OK),
    (PHOTOGRAPHER, "jpeg", 2 * MiB, OK),
    (PHOTOGRAPHER, "png", 5 * MiB + 1, "OBJECT_TOO_LARGE"),
    (PHOTOGRAPHER, "pdf", 4 * KiB, "TYPE_NOT_ALLOWED"),
    (PHOTOGRAPHER, "text", 4 * KiB, "TYPE_NOT_ALLOWED"),
    (CLERK, "pdf", 4 * KiB, OK),
    (CLERK, "pdf", 1 * MiB + 1, "OBJECT_TOO_LARGE"),
    (CLERK, "png", 4 * KiB, "TYPE_NOT_ALLOWED"),
    (DESIGNER, "png", 4 * KiB, OK),
    (DESIGNER, "jpeg", 4 * KiB, "TYPE_NOT_ALLOWED"),
    (VISITOR, "text", 4 * KiB, OK),
    (VISITOR, "png", 4 * KiB, "TYPE_NOT_ALLOWED"),
    (VISITOR, "pdf", 4 * KiB, "TYPE_NOT_ALLOWED"),
]
IDS = [f"{caller.name}-{sample}-{size}" for caller, sample, size, _ in CASES]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    from tests.project.readme_blocks import BLOCKS

    (block,) = [b for b in BLOCKS if "[[buckets.media.upload_policy.rules]]" in b.text]
    directory = tmp_path_factory.mktemp("principals")
    config, policy = directory / "buckets.toml", directory / "policy.toml"
    config.write_text(block.text)
    policy.write_text(api_keys_toml(CALLERS) + POLICY)
    env = {"GATEWAY_CONFIG": str(config), "GATEWAY_POLICY": str(policy)}
    with run_gateway(env, directory / "data") as gateway:
        yield gateway


@pytest.fixture(scope="module")
def stub(running: RunningGateway) -> Iterator[storage_pb2_grpc.StorageServiceStub]:
    with grpc.insecure_channel(running.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


def client_of(running: RunningGateway, caller: Caller) -> Client:
    return Client(running.target, token=caller.key, timeout=60)


@pytest.mark.parametrize(("caller", "sample", "size", "reason"), CASES, ids=IDS)
def test_put(running: RunningGateway, caller: Caller, sample: str, size: int, reason: str) -> None:
    data, declared = BY_NAME[sample].padded(size), BY_NAME[sample].declared
    key = f"put/{caller.name}-{sample}-{size}"
    with client_of(running, caller) as client:
        if reason == OK:
            client.put_bytes(key, data, bucket="media", content_type=declared)
            assert client.get_bytes(key, bucket="media") == data
        else:
            error = refused(client.put_bytes, key, data, bucket="media", content_type=declared)
            assert error.reason == reason, error.message
            assert_absent(client, key, "media")


def _start(stub: storage_pb2_grpc.StorageServiceStub, caller: Caller, key: str) -> str:
    # Declared application/octet-stream: the first bytes alone tell the type.
    spec = pb.PutSpec(bucket="media", key=key)
    response: pb.StartUploadResponse = stub.StartUpload(
        pb.StartUploadRequest(spec=spec), metadata=caller.metadata
    )
    return response.upload_id


def _finish(
    stub: storage_pb2_grpc.StorageServiceStub, caller: Caller, upload_id: str, data: bytes
) -> str:
    """OK, or the reason the upload's stream is refused for."""
    try:
        stub.Put(segment(upload_id, data, 0, finish=True), metadata=caller.metadata)
    except grpc.RpcError as error:
        return error_reason(error)[1]
    return OK


@pytest.mark.parametrize(("caller", "sample", "size", "reason"), CASES, ids=IDS)
def test_resumable_upload(
    running: RunningGateway,
    stub: storage_pb2_grpc.StorageServiceStub,
    caller: Caller,
    sample: str,
    size: int,
    reason: str,
) -> None:
    key = f"resumable/{caller.name}-{sample}-{size}"
    upload_id = _start(stub, caller, key)
    assert _finish(stub, caller, upload_id, BY_NAME[sample].padded(size)) == reason
    with client_of(running, caller) as client:
        if reason == OK:
            assert client.head(key, bucket="media").size == size
        else:
            assert_absent(client, key, "media")


def test_an_upload_continued_by_an_admin_is_judged_by_its_owners_rule(
    running: RunningGateway, stub: storage_pb2_grpc.StorageServiceStub
) -> None:
    """The clerk's upload of a PDF, sent by ops (whose own writes, named by no
    rule, take text only): the clerk's rule lets it in; a PNG it refuses."""
    pdf, png = BY_NAME["pdf"].padded(8 * KiB), BY_NAME["png"].padded(8 * KiB)
    assert _finish(stub, OPS, _start(stub, CLERK, "admin/clerk.pdf"), pdf) == OK
    assert _finish(stub, OPS, _start(stub, CLERK, "admin/clerk.png"), png) == "TYPE_NOT_ALLOWED"
    # The photographer's, by the photographer's rule: a PNG, not a PDF.
    assert _finish(stub, OPS, _start(stub, PHOTOGRAPHER, "admin/photo.png"), png) == OK
    upload_id = _start(stub, PHOTOGRAPHER, "admin/photo.pdf")
    assert _finish(stub, OPS, upload_id, pdf) == "TYPE_NOT_ALLOWED"
    with client_of(running, OPS) as client:
        assert client.head("admin/clerk.pdf", bucket="media").size == len(pdf)
        assert client.head("admin/photo.png", bucket="media").size == len(png)
        for key in ("admin/clerk.png", "admin/photo.pdf"):
            assert_absent(client, key, "media")


def test_a_copy_is_judged_by_the_copiers_rule(running: RunningGateway) -> None:
    """The clerk's PDF, copied within the bucket: the clerk may, the
    photographer (images only) may not."""
    pdf = BY_NAME["pdf"].padded(8 * KiB)
    with client_of(running, CLERK) as clerk, client_of(running, PHOTOGRAPHER) as photographer:
        clerk.put_bytes("copy/source.pdf", pdf, bucket="media", content_type="application/pdf")
        clerk.copy("copy/source.pdf", "copy/by-clerk.pdf", src_bucket="media", dst_bucket="media")
        assert clerk.get_bytes("copy/by-clerk.pdf", bucket="media") == pdf
        error = refused(photographer.copy, "copy/source.pdf", "copy/by-photographer.pdf",
                        src_bucket="media", dst_bucket="media")  # fmt: skip
        assert error.reason == "TYPE_NOT_ALLOWED", error.message
        assert_absent(photographer, "copy/by-photographer.pdf", "media")


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize(("caller", "sample", "size", "reason"), CASES, ids=IDS)
def test_signed_upload(
    running: RunningGateway, caller: Caller, sample: str, size: int, reason: str, method: str
) -> None:
    """A URL the caller signed, used by someone with no credentials: judged
    by the signer's rule."""
    data, declared = BY_NAME[sample].padded(size), BY_NAME[sample].declared
    key = f"signed-{method}/{caller.name}-{sample}-{size}"
    with client_of(running, caller) as client:
        signed = client.sign_url(key, bucket="media", method=method)
        if method == "PUT":
            headers = {**signed.headers, "Content-Type": declared}
            response = httpx.put(signed.url, content=data, headers=headers, timeout=60)
        else:
            files = {"file": ("upload", data, declared)}
            response = httpx.post(signed.url, data=signed.form_fields, files=files, timeout=60)
        if reason == OK:
            assert response.is_success, response.text
            assert client.get_bytes(key, bucket="media") == data
        else:
            assert response.headers.get(REASON_HEADER) == reason, response.text
            assert_absent(client, key, "media")
