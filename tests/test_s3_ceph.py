"""Through the gateway, against a real Ceph RADOS Gateway: what only a store that
verifies signatures can show."""

from __future__ import annotations

import urllib.parse
from datetime import timedelta

import botocore.auth
import grpc
import httpx
import pytest

from storagegw import Client, PermissionDenied
from tests.conftest import backend_env, run_gateway


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
