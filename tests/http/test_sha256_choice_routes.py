"""The bucket's SHA-256 choice on the routes that cannot ask for one: signed-URL
PUT and POST (served by the gateway's own listener, on the drivers that do
not sign URLs themselves) and Copy, within a backend and across backends."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from storagegw import Client
from tests.conftest import RunningGateway
from tests.rpc_calls import crc

MiB = 1024 * 1024
# The drivers whose signed URLs the gateway serves itself.
GATEWAY_SIGNED = ["memory", "local"]


def _upload(client: Client, key: str, method: str, data: bytes) -> dict[str, object]:
    """Upload data through a signed URL of method; the gateway's JSON answer."""
    signed = client.sign_url(key, method=method)
    if method == "PUT":
        response = httpx.put(signed.url, content=data, headers=signed.headers, timeout=30)
    else:
        files = {"file": ("f", data)}
        response = httpx.post(signed.url, data=signed.form_fields, files=files, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize("backend", GATEWAY_SIGNED)
def test_signed_upload_follows_the_bucket_choice(
    gateway_factory: Callable[..., RunningGateway], backend: str, method: str
) -> None:
    data = os.urandom(3 * MiB + 5)
    digest = hashlib.sha256(data).digest()
    for choice, expected in (("on_request", b""), ("always", digest)):
        running = gateway_factory(
            STORAGE_BACKEND=backend,
            GATEWAY_SHA256=choice,
            GATEWAY_DEFAULT_BUCKET=choice.replace("_", "-"),
            STORAGE_URL_SECRET="sha256-routes-test-secret",
        )
        with Client(running.target, timeout=30) as client:
            body = _upload(client, "up.bin", method, data)
            assert (body["size"], body["crc32c"], body["sha256"]) == (
                len(data),
                crc(data),
                expected.hex(),
            )
            info = client.head("up.bin")
            assert (info.crc32c, info.sha256 or b"") == (crc(data), expected)
            assert client.get_bytes("up.bin") == data


def test_copy_keeps_a_source_sha256_and_follows_the_destination_choice(
    gateway_factory: Callable[..., RunningGateway], tmp_path: Path
) -> None:
    config = tmp_path / "buckets.toml"
    config.write_text(
        "[buckets.asked]\nbackend = 'memory'\nsha256 = 'on_request'\n"
        "[buckets.every]\nbackend = 'local'\n"  # the default: always
    )
    running = gateway_factory(GATEWAY_CONFIG=str(config))
    data = os.urandom(2 * MiB + 3)
    digest = hashlib.sha256(data).digest()
    with Client(running.target, timeout=30) as client:
        assert client.put_bytes("none", data, bucket="asked").sha256 is None
        # Within one backend the driver copies: no byte read, none computed.
        assert (
            client.copy("none", "none-copy", src_bucket="asked", dst_bucket="asked").sha256 is None
        )
        # Streamed into a bucket that computes it always: computed.
        copied = client.copy("none", "from-asked", src_bucket="asked", dst_bucket="every")
        assert (copied.crc32c, copied.sha256) == (crc(data), digest)
        # A source's SHA-256 is checked and kept, even where it is only on request.
        client.put_bytes("with", data, bucket="every")
        kept = client.copy("with", "from-every", src_bucket="every", dst_bucket="asked")
        assert kept.sha256 == digest
        assert client.head("from-every", bucket="asked").sha256 == digest
        assert client.get_bytes("from-asked", bucket="every") == data
