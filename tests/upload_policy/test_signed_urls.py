"""The bucket's upload policy on signed-URL PUT and POST served by the
gateway's own listener (the memory and local drivers), over real HTTP, with
the corpus of real file headers declared truthfully and falsely: refused
with the policy's reason (its REASON_HEADER and HTTP status)
and nothing stored, or stored."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.http.server import REASON_HEADER
from storagegw import Client
from tests.conftest import run_gateway
from tests.upload_policy.file_headers import BY_NAME, CORPUS, Sample
from tests.upload_policy.gateways import (
    DRIVERS,
    GATEWAY_SIGNED,
    SECRET,
    TRUTHFUL_ALLOWED,
    assert_absent,
    policy_config,
)

KiB = 1024


@pytest.fixture(params=GATEWAY_SIGNED)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    config = tmp_path / "buckets.toml"
    config.write_text(policy_config(request, request.param, DRIVERS[request.param]))
    env = {"GATEWAY_CONFIG": str(config), "STORAGE_URL_SECRET": SECRET}
    with run_gateway(env, tmp_path / "data") as running, Client(running.target) as client:
        yield client


def upload(
    client: Client, key: str, method: str, data: bytes, content_type: str, bucket: str = "typed"
) -> httpx.Response:
    """Send data through a signed URL of method, declared content_type."""
    signed = client.sign_url(key, bucket=bucket, method=method)
    if method == "PUT":
        headers = {**signed.headers, "Content-Type": content_type}
        return httpx.put(signed.url, content=data, headers=headers, timeout=30)
    files = {"file": ("upload", data, content_type)}
    return httpx.post(signed.url, data=signed.form_fields, files=files, timeout=30)


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: s.name)
def test_signed_upload_of_each_header(client: Client, sample: Sample, method: str) -> None:
    data = sample.padded(200 * KiB)
    key = f"signed{sample.suffix}"
    response = upload(client, key, method, data, sample.false)
    assert (response.status_code, response.headers[REASON_HEADER]) == (415, "TYPE_MISMATCH")
    assert f"declared {sample.false!r}" in response.text
    assert f"first bytes are {sample.sniffed!r}" in response.text
    assert_absent(client, key)
    response = upload(client, key, method, data, sample.declared)
    if sample.name in TRUTHFUL_ALLOWED:
        assert response.status_code == 200, response.text
        assert response.json()["size"] == len(data)
        assert client.get_bytes(key) == data
    else:
        assert (response.status_code, response.headers[REASON_HEADER]) == (415, "TYPE_NOT_ALLOWED")
        assert_absent(client, key)


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_signed_upload_declaring_nothing_is_judged_by_its_bytes(
    client: Client, method: str
) -> None:
    response = upload(client, "x.sh", method, BY_NAME["shell"].data, "application/octet-stream")
    assert (response.status_code, response.headers[REASON_HEADER]) == (415, "TYPE_NOT_ALLOWED")
    assert "'text/x-shellscript'" in response.text
    assert_absent(client, "x.sh")


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_signed_upload_size_and_suffix_rules(client: Client, method: str) -> None:
    # A signed upload carries no user metadata: a bucket that requires some
    # takes none through signed URLs.
    data = os.urandom(4 * KiB)
    response = upload(client, "a.bin", method, data, "application/octet-stream", "sized")
    assert (response.status_code, response.headers[REASON_HEADER]) == (400, "METADATA_REQUIRED")
    response = upload(client, "a.exe", method, data, "application/octet-stream", "sized")
    assert response.headers[REASON_HEADER] == "KEY_SUFFIX_NOT_ALLOWED"
    assert_absent(client, "a.bin", "sized")


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_signed_upload_bounds_from_the_images_bucket(client: Client, method: str) -> None:
    png = BY_NAME["png"].padded(64 * KiB)
    response = upload(client, "p.png", method, png, "application/octet-stream", "images")
    assert response.status_code == 200, response.text
    text = BY_NAME["text"].padded(64 * KiB)
    response = upload(client, "t.png", method, text, "application/octet-stream", "images")
    assert (response.status_code, response.headers[REASON_HEADER]) == (415, "TYPE_NOT_ALLOWED")
    assert_absent(client, "t.png", "images")
