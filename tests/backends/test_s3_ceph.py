"""Through the gateway, against a real Ceph RADOS Gateway: what only a store that
verifies signatures can show."""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
from datetime import timedelta

import botocore.auth
import grpc
import httpx
import pytest

from storagegw import Client, PermissionDenied
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests import rpc_calls as rpc
from tests.conftest import S3_TEST_BUCKET, backend_env, run_gateway


@pytest.fixture
def ceph_gateway(request, tmp_path):
    with run_gateway(backend_env(request, "s3-ceph"), tmp_path) as running:
        yield running


@pytest.fixture
def client(ceph_gateway):
    with Client(ceph_gateway.target, timeout=30) as storage:
        yield storage


def _tamper(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)

    def flip(signature: str) -> str:  # another hex digit in front, whatever was there
        return ("1" if signature[0] == "0" else "0") + signature[1:]

    changed = [(k, flip(v) if k == "X-Amz-Signature" else v) for k, v in query]
    assert changed != query
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(changed)))


def test_presigned_urls_are_ceph_s_and_verified(client):
    client.put_bytes("doc.txt", b"from ceph")
    signed = client.sign_url("doc.txt", expires_in=60, download=True, filename="d.txt")
    assert "X-Amz-Signature=" in signed.url  # S3's own presigning, not the gateway's
    response = httpx.get(signed.url)
    assert response.status_code == 200
    assert response.content == b"from ceph"
    assert "attachment" in response.headers["content-disposition"]
    assert httpx.get(_tamper(signed.url)).status_code == 403
    other_key = signed.url.replace("/doc.txt?", "/other.txt?")
    assert httpx.get(other_key).status_code == 403


def test_presigned_put_is_bound_to_its_content_type(client):
    upload = client.sign_url("up.bin", method="PUT", content_type="text/plain", expires_in=60)
    wrong = httpx.put(upload.url, content=b"x", headers={"Content-Type": "image/png"})
    assert wrong.status_code == 403
    assert not client.exists("up.bin")
    right = httpx.put(upload.url, content=b"uploaded", headers=upload.headers)
    assert right.status_code == 200, right.text
    assert client.get_bytes("up.bin") == b"uploaded"


def test_wrong_secret_key_is_permission_denied(request, tmp_path):
    env = backend_env(request, "s3-ceph")
    env["STORAGE_S3_SECRET_KEY"] = "not-the-secret-key-at-all"
    with (
        run_gateway(env, tmp_path) as running,
        Client(running.target, timeout=30) as storage,
        pytest.raises(PermissionDenied) as denied,
    ):
        storage.put_bytes("k", b"x")
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "not-the-secret-key-at-all" not in denied.value.message


def test_expired_presigned_url_is_refused(client, monkeypatch):
    client.put_bytes("old.txt", b"x")
    real = botocore.auth.get_current_datetime

    def two_hours_ago(remove_tzinfo: bool = True):
        return real(remove_tzinfo) - timedelta(hours=2)

    # Sign as if two hours ago (botocore reads its clock when signing): a URL
    # valid for one minute has long expired, without waiting for it.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", two_hours_ago)
    expired = client.sign_url("old.txt", expires_in=60)
    monkeypatch.undo()
    assert httpx.get(expired.url).status_code == 403
    fresh = client.sign_url("old.txt", expires_in=60)
    assert httpx.get(fresh.url).status_code == 200


# --- presigned POST (HTML-form upload with a policy) -----------------------------


def test_presigned_post_policy_is_enforced_by_ceph(client, ceph_rgw):
    signed = client.sign_url(
        "forms/in.txt",
        method="POST",
        content_type="text/plain",
        min_size=2,
        max_size=10,
        expires_in=60,
    )
    assert signed.method == "POST"
    assert signed.url == f"{ceph_rgw.endpoint}/{S3_TEST_BUCKET}"  # Ceph's own, not the gateway's
    assert signed.form_fields["key"] == "forms/in.txt"
    assert ceph_rgw.secret_key not in str(signed.form_fields)

    def post(data: bytes, **changes: str) -> httpx.Response:
        fields = {**signed.form_fields, **changes}
        return httpx.post(signed.url, data=fields, files={"file": ("in.txt", data)})

    too_big = post(b"x" * 11)
    assert too_big.status_code == 400
    assert "EntityTooLarge" in too_big.text
    too_small = post(b"x")
    assert too_small.status_code == 400
    assert "EntityTooSmall" in too_small.text
    assert post(b"hello", **{"Content-Type": "image/png"}).status_code == 403
    assert post(b"hello", key="forms/elsewhere.txt").status_code == 403
    tampered = signed.form_fields["x-amz-signature"]
    tampered = ("1" if tampered[0] == "0" else "0") + tampered[1:]
    assert post(b"hello", **{"x-amz-signature": tampered}).status_code == 403
    assert not client.exists("forms/in.txt")
    assert not client.exists("forms/elsewhere.txt")

    accepted = post(b"hello")
    assert accepted.status_code in (200, 204), accepted.text
    assert client.get_bytes("forms/in.txt") == b"hello"
    assert client.head("forms/in.txt").content_type == "text/plain"


def test_presigned_post_takes_the_gateway_size_limit(request, tmp_path, ceph_rgw):
    env = {**backend_env(request, "s3-ceph"), "GATEWAY_MAX_OBJECT_SIZE": "4"}
    with run_gateway(env, tmp_path) as running, Client(running.target, timeout=30) as storage:
        signed = storage.sign_url("limited", method="POST", expires_in=60)
        policy = json.loads(base64.b64decode(signed.form_fields["policy"]))
        assert ["content-length-range", 0, 4] in policy["conditions"]
        response = httpx.post(signed.url, data=signed.form_fields, files={"file": b"12345"})
        assert response.status_code == 400
        assert not storage.exists("limited")


# --- storage class and server-side encryption, passed through ----------------------


def _spec_put(stub, key: str, data: bytes, **spec: str) -> pb.ObjectInfo:
    return rpc.put(stub, key, data, spec=pb.PutSpec(key=key, **spec))


def test_storage_class_and_sse_kms_pass_through_to_ceph(ceph_gateway, ceph_rgw):
    s3 = ceph_rgw.client()
    with grpc.insecure_channel(ceph_gateway.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        small, big = b"cold and secret", os.urandom(12 * 1024 * 1024)  # big: multipart
        for key, data in (("small", small), ("big", big)):
            info = _spec_put(
                stub,
                key,
                data,
                storage_class="COLD",
                server_side_encryption="aws:kms",
                kms_key_id=ceph_rgw.kms_key_id,
            )
            assert info.storage_class == "COLD"
            head = stub.Head(pb.HeadRequest(key=key)).object
            assert head.storage_class == "COLD"
            # What Ceph itself recorded: the class, and the object encrypted with the key.
            stored = s3.head_object(Bucket=S3_TEST_BUCKET, Key=key)
            assert stored["StorageClass"] == "COLD"
            assert stored["ServerSideEncryption"] == "aws:kms"
            assert stored["SSEKMSKeyId"] == ceph_rgw.kms_key_id
            assert rpc.get(stub, key)[1] == data
        listed = stub.List(pb.ListRequest()).objects
        assert {o.key: o.storage_class for o in listed} == {"big": "COLD", "small": "COLD"}


def test_bucket_storage_class_and_sse_settings_apply(request, tmp_path, ceph_rgw):
    env = {
        **backend_env(request, "s3-ceph"),
        "STORAGE_S3_STORAGE_CLASS": "COLD",
        "STORAGE_S3_SSE": "aws:kms",
        "STORAGE_S3_SSE_KMS_KEY_ID": ceph_rgw.kms_key_id,
    }
    with run_gateway(env, tmp_path) as running, Client(running.target, timeout=30) as storage:
        storage.put_bytes("defaults", b"x")
        assert storage.head("defaults").storage_class == "COLD"
    stored = ceph_rgw.client().head_object(Bucket=S3_TEST_BUCKET, Key="defaults")
    assert (stored["StorageClass"], stored["SSEKMSKeyId"]) == ("COLD", ceph_rgw.kms_key_id)


def test_storage_class_ceph_does_not_know_is_invalid_argument(ceph_gateway):
    with grpc.insecure_channel(ceph_gateway.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            _spec_put(stub, "k", b"x", storage_class="GLACIER")
        assert rpc.error_reason(caught.value) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
        assert "storage class" in caught.value.details()
        with pytest.raises(grpc.RpcError) as missing:
            stub.Head(pb.HeadRequest(key="k"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
