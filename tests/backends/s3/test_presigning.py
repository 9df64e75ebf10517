"""Driver-level tests of the S3 backend's presigned URLs and POST policies.

Against a real moto server over HTTP; the behaviour all drivers share is in
tests/backends/test_backend_conformance.py. moto does not verify signatures, so wrong
credentials are not tested here (they are on Ceph RGW)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from gateway.backends.s3.backend import S3Backend
from gateway.domain.errors import GatewayError, Reason
from tests import drivers
from tests.backends.s3.moto_bucket import BUCKET


async def test_presigned_urls(backend: S3Backend) -> None:
    put = await drivers.sign(backend, "dir/up.txt", "PUT", content_type="text/plain")
    assert put.url.startswith(f"{backend.settings.endpoint_url}/{BUCKET}/gw/dir/up.txt?")
    assert "X-Amz-Signature=" in put.url
    assert "testing-secret" not in put.url
    assert put.headers == {"Content-Type": "text/plain"}
    assert put.form_fields == {}
    async with httpx.AsyncClient() as http:
        response = await http.put(put.url, content=b"uploaded", headers=put.headers)
        assert response.status_code == 200
        meta = await backend.head("dir/up.txt")
        assert (meta.size, meta.content_type) == (8, "text/plain")
        get = await drivers.sign(backend, "dir/up.txt", "GET", download=True, filename="résumé.txt")
        assert get.headers == {}
        response = await http.get(get.url)
        assert response.status_code == 200
        assert response.content == b"uploaded"
        assert response.headers["content-disposition"].startswith("attachment;")
    with pytest.raises(GatewayError) as caught:
        await drivers.sign(backend, "k", "PUT", max_size=10)
    assert caught.value.reason is Reason.UNSUPPORTED_OPTION


async def test_presigned_post_policy(backend: S3Backend) -> None:
    post = await drivers.sign(
        backend, "dir/form.txt", "POST", content_type="text/plain", min_size=2, max_size=10
    )
    assert post.url == f"{backend.settings.endpoint_url}/{BUCKET}"
    assert post.headers == {}
    assert post.form_fields["key"] == "gw/dir/form.txt"
    assert post.form_fields["Content-Type"] == "text/plain"
    assert "testing-secret" not in str(post.form_fields)
    # The policy S3 checks: the exact key, the size range and the type.
    policy = json.loads(base64.b64decode(post.form_fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 2, 10] in conditions
    assert {"Content-Type": "text/plain"} in conditions
    assert {"key": "gw/dir/form.txt"} in conditions
    async with httpx.AsyncClient() as http:
        response = await http.post(
            post.url, data=post.form_fields, files={"file": ("form.txt", b"by form")}
        )
        assert response.status_code in (200, 204), response.text
    meta = await backend.head("dir/form.txt")
    assert (meta.size, meta.content_type) == (7, "text/plain")
