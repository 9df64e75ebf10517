"""A compressed bucket through the gateway, as a client sees it (gRPC and
signed URLs, on a local disk and on Ceph RGW): the original bytes, size and
checksums everywhere; URLs the gateway serves itself (resumable uploads:
test_resumable.py)."""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.backends.base import Backend
from gateway.domain.checksums import crc32c
from gateway.layers.compression.layouts import ENCODING
from storagegw import Client, PreconditionFailed, RetryPolicy
from tests.compression.stored import json_log, noise
from tests.conftest import RunningGateway, run_gateway
from tests.drivers import backend_env

MIB = 1024 * 1024


@pytest.fixture(params=["local-zstd", "s3-ceph-zstd"])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    return backend_env(request, request.param)


@pytest.fixture
def running(env: dict[str, str], tmp_path: Path) -> Iterator[RunningGateway]:
    with run_gateway(env, tmp_path) as gateway:
        yield gateway


@pytest.fixture
def client(running: RunningGateway) -> Iterator[Client]:
    with Client(running.target, timeout=60, retry=RetryPolicy.no_retry()) as gateway_client:
        yield gateway_client


def _plain(env: dict[str, str], tmp_path: Path) -> Backend:
    """The same store's driver, without the compression layer."""
    settings = {k: v for k, v in env.items() if not k.startswith("GATEWAY_COMPRESSION")}
    config = config_module.load({"STORAGE_BASE_PATH": str(tmp_path), **settings})
    return config.buckets[config.default_bucket].build()


def test_put_head_list_get_tell_the_original(
    client: Client, running: RunningGateway, env: dict[str, str], tmp_path: Path
) -> None:
    data = json_log(3 * MIB + 12_345)
    info = client.put_bytes("logs/day.json", data, content_type="application/json")
    expected = (len(data), crc32c(data), hashlib.sha256(data).digest())
    assert (info.size, info.crc32c, info.sha256) == expected
    head = client.head("logs/day.json")
    assert (head.size, head.crc32c, head.sha256) == expected
    assert head.metadata == {}
    (listed,) = list(client.list("logs/"))
    assert listed.size == len(data)
    assert client.get_bytes("logs/day.json") == data
    offset = MIB - 50
    assert client.get_bytes("logs/day.json", offset=offset, length=100) == data[offset:][:100]
    plain = _plain(env, tmp_path)
    try:
        stored = running.run(plain.head("logs/day.json"))
    finally:
        running.run(plain.close())
    assert stored.size < len(data) / 2
    assert stored.metadata[ENCODING] == "zstd-seekable"


def test_a_write_refused_by_its_conditions_stores_nothing(client: Client) -> None:
    data = json_log(100_000)
    client.put_bytes("c.json", data, content_type="application/json")
    with pytest.raises(PreconditionFailed):
        client.put_bytes("c.json", b"{}", content_type="application/json", if_none_match="*")
    assert client.get_bytes("c.json") == data


def test_signed_urls_are_served_by_the_gateway(client: Client, running: RunningGateway) -> None:
    data = json_log(200_000)
    client.put_bytes("s.json", data, content_type="application/json")
    signed = client.sign_url("s.json")
    assert signed.url.startswith(running.http_url)  # never the store's own URL
    with urllib.request.urlopen(signed.url, timeout=30) as response:  # noqa: S310 - loopback
        assert response.read() == data
    put = client.sign_url("t.json", method="PUT", content_type="application/json")
    request = urllib.request.Request(  # noqa: S310 - loopback
        put.url,
        data=data,
        method="PUT",
        headers={"Content-Type": "application/json", **put.headers},
    )
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - loopback
        pass
    assert client.get_bytes("t.json") == data
    assert client.head("t.json").size == len(data)


def test_incompressible_text_reads_back(client: Client) -> None:
    data = noise(300_000)
    info = client.put_bytes("n.txt", data, content_type="text/plain")
    assert (info.size, info.crc32c) == (len(data), crc32c(data))
    assert client.get_bytes("n.txt", offset=1000, length=5) == data[1000:1005]
