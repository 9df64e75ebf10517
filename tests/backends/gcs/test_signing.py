"""Driver-level tests of the GCS backend's signed URLs and POST policies, checked by
what they ask for and by fetching them, and of the credentials signing needs.

Against a real fake-gcs-server over HTTP. The emulator checks no credentials and no
signatures, and ignores some preconditions (tests/backends/test_gcs_emulator_gaps.py);
these tests stay on what it gets right."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.backends.gcs.backend import GcsBackend
from gateway.domain.errors import GatewayError, Reason
from tests import drivers
from tests.backends.gcs.emulator_bucket import driver_settings
from tests.fake_gcs_server import FakeGcsServer


async def test_signed_urls(fake_gcs: FakeGcsServer, bucket: str, gcs_key_file: Path) -> None:
    driver = GcsBackend(driver_settings(fake_gcs, bucket, credentials_path=str(gcs_key_file)))
    try:
        put = await drivers.sign(driver, "dir/up.txt", "PUT", content_type="text/plain")
        parts = urlsplit(put.url)
        query = parse_qs(parts.query)
        assert f"{parts.scheme}://{parts.netloc}" == fake_gcs.endpoint
        assert parts.path == f"/{bucket}/gw/dir/up.txt"
        assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
        assert "content-type" in query["X-Goog-SignedHeaders"][0].split(";")
        assert put.headers == {"Content-Type": "text/plain"}
        async with httpx.AsyncClient() as http:
            response = await http.put(put.url, content=b"uploaded", headers=put.headers)
            assert response.status_code == 200, response.text
            meta = await driver.head("dir/up.txt")
            assert (meta.size, meta.content_type) == (8, "text/plain")
            get = await drivers.sign(
                driver, "dir/up.txt", "GET", download=True, filename="résumé.txt"
            )
            assert get.headers == {}
            disposition = parse_qs(urlsplit(get.url).query)["response-content-disposition"][0]
            assert disposition.startswith('attachment; filename="r_sum_.txt"; filename*=UTF-8')
            response = await http.get(get.url)
            assert response.status_code == 200
            assert response.content == b"uploaded"
        with pytest.raises(GatewayError) as caught:
            await drivers.sign(driver, "k", "PUT", max_size=10)
        assert caught.value.reason is Reason.UNSUPPORTED_OPTION
        with pytest.raises(GatewayError) as caught:
            await drivers.sign(driver, "k", "GET", 8 * 86400)
        assert caught.value.reason is Reason.INVALID_EXPIRY
    finally:
        await driver.close()


async def test_signed_post_policy(fake_gcs: FakeGcsServer, bucket: str, gcs_key_file: Path) -> None:
    driver = GcsBackend(driver_settings(fake_gcs, bucket, credentials_path=str(gcs_key_file)))
    try:
        post = await drivers.sign(
            driver, "dir/form.txt", "POST", content_type="text/plain", min_size=2, max_size=10
        )
        assert post.url == f"{fake_gcs.endpoint}/{bucket}/"
        assert post.headers == {}
        fields = post.form_fields
        assert fields["key"] == "gw/dir/form.txt"
        assert fields["Content-Type"] == "text/plain"
        assert fields["x-goog-algorithm"] == "GOOG4-RSA-SHA256"
        # The policy GCS checks (the emulator does not): exact name, size range, type.
        conditions = json.loads(base64.b64decode(fields["policy"]))["conditions"]
        assert ["content-length-range", 2, 10] in conditions
        assert {"Content-Type": "text/plain"} in conditions
        assert {"key": "gw/dir/form.txt"} in conditions
        async with httpx.AsyncClient() as http:
            # The library's URL is GCS's "/<bucket>/"; fake-gcs-server routes
            # form uploads at "/<bucket>" only (test_gcs_emulator_gaps.py).
            response = await http.post(
                post.url.rstrip("/"), data=fields, files={"file": ("form.txt", b"by form")}
            )
        assert response.status_code in (200, 201, 204), response.text
        meta = await driver.head("dir/form.txt")
        assert meta.size == 7
    finally:
        await driver.close()


async def test_signing_needs_credentials_that_can_sign(backend: GcsBackend) -> None:
    with pytest.raises(GatewayError) as caught:
        await drivers.sign(backend, "k", "GET", 60)
    assert caught.value.reason is Reason.UNSUPPORTED_OPTION
    assert "STORAGE_GCS_CREDENTIALS_PATH" in caught.value.message
