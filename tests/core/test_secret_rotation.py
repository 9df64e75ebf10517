"""Rotating the URL secret (STORAGE_URL_SECRET="<current>,<previous>..."):
signed URLs and upload ids made with a previous secret keep working until they
expire, new ones are made with the current secret and name it by its key id,
and removing a secret from the list retires what was made with it. Checked on
the signer and the upload ids, then on a real gateway restarted with each list."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import grpc
import httpx
import pytest

from gateway.core.signing import P_KEY_ID, SignatureError, UrlSigner
from gateway.core.upload_ids import UploadIds
from gateway.core.url_secret import key_id_of, parse_secrets
from gateway.domain.errors import GatewayError, Reason
from storagegw.v1 import storage_pb2 as pb
from tests.conftest import RunningGateway, run_gateway
from tests.rpc.resumable_calls import Stub, put, query, segment, start
from tests.rpc_calls import call_error
from tests.rpc_calls import put as rpc_put

A = "0123456789abcdef0123456789abcdef"
B = "fedcba9876543210-the-new-secret"
NOW = 1_000_000
# Made by the gateway before key ids existed (commit a137b13), with secret A at NOW.
LEGACY_URL = (
    "http://gw/v1/b/alpha/o/k?X-Sgw-Expires=1000060&X-Sgw-Method=GET"
    "&X-Sgw-Signature=9e2d698d2e739af0eeae236e568e063b5a8f44cec2544ca626d930d53f643e65"
)
LEGACY_UPLOAD_ID = (  # s3, bucket "b", key "legacy.bin", handle "upload-1", 3600 s
    "gAAAAAAAD0JANWmIiXuXn49zLu3w0F8Mq1IvZhOGP9OD1mEejYG0IWKt4iCRym6fe2-Y7eb2GdJe3DWLu27KcpNKZix2"
    "HrnXk5waxzKpdewzfatuKTD-f_YB2UhxGvZsR-ZZX19AKpipQuSmh_NSeT-tKEENPUMida2Ij5rrQSRVVTnH3X9TTXc="
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def kid(secret: str) -> str:
    return key_id_of(secret.encode())


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def signer(secrets: str, clock: Clock) -> UrlSigner:
    return UrlSigner(parse_secrets(secrets), "http://gw", clock=clock)


def upload_ids(secrets: str, clock: Clock) -> UploadIds:
    return UploadIds(parse_secrets(secrets), lifetime_s=3600, clock=clock)


# --- the signer and the upload ids --------------------------------------------


def test_url_signed_before_rotation_verifies_until_it_expires() -> None:
    clock = Clock(NOW)
    url = signer(A, clock).sign("alpha", "k", "GET", 60).url
    assert query_of(url)[P_KEY_ID] == kid(A)
    rotated = signer(f"{B},{A}", clock)
    assert rotated.verify("GET", "alpha", "k", query_of(url)).expire_time_unix == NOW + 60
    clock.now = NOW + 60
    with pytest.raises(SignatureError, match="expired"):
        rotated.verify("GET", "alpha", "k", query_of(url))


def test_url_signed_with_a_retired_secret_is_refused() -> None:
    clock = Clock(NOW)
    url = signer(A, clock).sign("alpha", "k", "GET", 60).url
    with pytest.raises(SignatureError, match="no longer accepts") as caught:
        signer(B, clock).verify("GET", "alpha", "k", query_of(url))
    assert caught.value.reason is Reason.PERMISSION_DENIED
    assert A not in caught.value.message


def test_new_urls_name_the_current_secret() -> None:
    clock = Clock(NOW)
    url = signer(f"{B},{A}", clock).sign("alpha", "k", "PUT", 60).url
    assert query_of(url)[P_KEY_ID] == kid(B)
    # Signed with B alone: verifies once A is retired, and not where B is unknown.
    assert signer(B, clock).verify("PUT", "alpha", "k", query_of(url))
    with pytest.raises(SignatureError):
        signer(A, clock).verify("PUT", "alpha", "k", query_of(url))


def test_the_key_id_is_signed() -> None:
    clock = Clock(NOW)
    query = query_of(signer(f"{B},{A}", clock).sign("alpha", "k", "GET", 60).url)
    # Pointing a URL signed with B at A makes its signature wrong.
    with pytest.raises(SignatureError, match="bad signature"):
        signer(f"{B},{A}", clock).verify("GET", "alpha", "k", {**query, P_KEY_ID: kid(A)})


def test_url_made_before_key_ids_verifies_with_any_listed_secret() -> None:
    clock = Clock(NOW)
    assert P_KEY_ID not in query_of(LEGACY_URL)
    for secrets in (A, f"{B},{A}"):
        assert signer(secrets, clock).verify("HEAD", "alpha", "k", query_of(LEGACY_URL))
    with pytest.raises(SignatureError, match="bad signature"):
        signer(B, clock).verify("GET", "alpha", "k", query_of(LEGACY_URL))


def test_upload_id_made_before_rotation_opens_until_it_expires() -> None:
    clock = Clock(NOW)
    upload_id, _ = upload_ids(A, clock).issue("s3", "b", "k", "upload-1")
    assert upload_id.startswith(f"{kid(A)}.")
    rotated = upload_ids(f"{B},{A}", clock)
    assert rotated.open(upload_id).handle == "upload-1"
    clock.now = NOW + 3600
    with pytest.raises(GatewayError) as caught:
        rotated.open(upload_id)
    assert caught.value.reason is Reason.UPLOAD_EXPIRED


def test_upload_id_made_with_a_retired_secret_is_refused() -> None:
    clock = Clock(NOW)
    upload_id, _ = upload_ids(A, clock).issue("s3", "b", "k", "upload-1")
    with pytest.raises(GatewayError, match="no longer accepts") as caught:
        upload_ids(B, clock).open(upload_id)
    assert caught.value.reason is Reason.INVALID_UPLOAD_ID


def test_new_upload_ids_name_the_current_secret() -> None:
    clock = Clock(NOW)
    upload_id, _ = upload_ids(f"{B},{A}", clock).issue("s3", "b", "k", "upload-1")
    assert upload_id.startswith(f"{kid(B)}.")
    assert upload_ids(B, clock).open(upload_id).key == "k"
    # Another key id on the same token: the token's MAC is not that secret's.
    relabelled = f"{kid(A)}.{upload_id.partition('.')[2]}"
    with pytest.raises(GatewayError) as caught:
        upload_ids(f"{B},{A}", clock).open(relabelled)
    assert caught.value.reason is Reason.INVALID_UPLOAD_ID


def test_upload_id_made_before_key_ids_opens_with_any_listed_secret() -> None:
    clock = Clock(NOW)
    for secrets in (A, f"{B},{A}"):
        ref = upload_ids(secrets, clock).open(LEGACY_UPLOAD_ID)
        named = (ref.backend, ref.bucket, ref.key, ref.handle)
        assert named == ("s3", "b", "legacy.bin", "upload-1")
    with pytest.raises(GatewayError) as caught:
        upload_ids(B, clock).open(LEGACY_UPLOAD_ID)
    assert caught.value.reason is Reason.INVALID_UPLOAD_ID


# --- a real gateway restarted with each list ------------------------------------

MiB = 1024 * 1024


def served_by(url: str, gateway: RunningGateway) -> str:
    """url on gateway's HTTP port (each restart listens on a new one)."""
    return urlunsplit(urlsplit(gateway.http_url)[:2] + urlsplit(url)[2:])


def test_gateway_restarted_with_a_new_secret_keeps_then_retires_the_old_one(
    tmp_path: Path,
) -> None:
    data = os.urandom(2 * MiB)
    env = {"STORAGE_BACKEND": "local"}
    # Before rotation: secret A signs a URL and starts two uploads.
    with (
        run_gateway({**env, "STORAGE_URL_SECRET": A}, tmp_path) as gw,
        grpc.insecure_channel(gw.target) as channel,
    ):
        stub = Stub(channel)
        rpc_put(stub, "doc.txt", b"signed before rotation")
        old_url = stub.SignUrl(pb.SignUrlRequest(key="doc.txt", method=pb.SIGNED_METHOD_GET)).url
        continued = start(stub, "big.bin")
        put(stub, segment(continued, data[:MiB], 0, finish=False))
        retired = start(stub, "late.bin")
    assert query_of(old_url)[P_KEY_ID] == kid(A)
    assert continued.startswith(f"{kid(A)}.")

    # Rotated to [B, A]: what A made still works; what is new is made with B.
    with (
        run_gateway({**env, "STORAGE_URL_SECRET": f"{B}, {A}"}, tmp_path) as gw,
        grpc.insecure_channel(gw.target) as channel,
    ):
        stub = Stub(channel)
        response = httpx.get(served_by(old_url, gw), timeout=30)
        assert response.status_code == 200, response.text
        assert response.content == b"signed before rotation"
        new_url = stub.SignUrl(pb.SignUrlRequest(key="doc.txt", method=pb.SIGNED_METHOD_GET)).url
        assert query_of(new_url)[P_KEY_ID] == kid(B)
        # The upload A started is found (local disk keeps 32 MiB units: none yet).
        persisted = query(stub, continued).persisted_size
        done = put(stub, segment(continued, data, persisted, finish=True))
        assert done.object.sha256 == hashlib.sha256(data).digest()
        fresh = start(stub, "new.bin")
        assert fresh.startswith(f"{kid(B)}.")

    # A retired: its URL and upload id are refused; B's still work.
    with (
        run_gateway({**env, "STORAGE_URL_SECRET": B}, tmp_path) as gw,
        grpc.insecure_channel(gw.target) as channel,
    ):
        stub = Stub(channel)
        refused = httpx.get(served_by(old_url, gw), timeout=30)
        assert refused.status_code == 403
        assert refused.headers["X-Sgw-Reason"] == "PERMISSION_DENIED"
        assert "no longer accepts" in refused.text
        assert httpx.get(served_by(new_url, gw), timeout=30).content == b"signed before rotation"
        for call, message in (
            (stub.QueryUpload, pb.QueryUploadRequest(upload_id=retired)),
            (stub.AbortUpload, pb.AbortUploadRequest(upload_id=retired)),
            (stub.Put, segment(retired, b"data", 0, finish=True)),
        ):
            code, reason, _ = call_error(call, message)
            assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_UPLOAD_ID")
        assert query(stub, fresh).persisted_size == 0
