"""A CDN in front of a bucket on a store that signs URLs itself (S3, on
moto): a GET goes through the CDN, while the storage's and the gateway's
URLs stay available; and a scanning bucket purges the keys it publishes,
never its hidden staging keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from storagegw import Client
from tests.cdn.cdn_gateways import BUNNY_BASE, CLOUDFRONT_BASE, SECRETS_ENV, write_private_key
from tests.cdn.standins import ACCESS_KEY_ID, DISTRIBUTION_ID, BunnyApi, CloudFrontApi
from tests.clamd_server import ClamdServer
from tests.conftest import RunningGateway, run_gateway
from tests.moto_server import MotoServer
from tests.servers import make_bucket

S3_BUCKET = "sgw-cdn-origin"


@pytest.fixture
def apis() -> Iterator[tuple[CloudFrontApi, BunnyApi]]:
    with CloudFrontApi().running() as cloudfront, BunnyApi().running() as bunny:
        yield cloudfront, bunny  # type: ignore[misc]


@pytest.fixture
def running(
    apis: tuple[CloudFrontApi, BunnyApi],
    moto_server: MotoServer,
    clamd: ClamdServer,
    tmp_path: Path,
) -> Iterator[RunningGateway]:
    cloudfront, bunny = apis
    moto_server.reset()
    make_bucket(moto_server.endpoint, moto_server.access_key, moto_server.secret_key, S3_BUCKET)
    pem = tmp_path / "cloudfront.pem"
    write_private_key(pem)
    config = tmp_path / "buckets.toml"
    config.write_text(
        "default_bucket = 'origin'\n"
        "[buckets.origin]\nbackend = 's3'\n"
        f"bucket = '{S3_BUCKET}'\nendpoint = '{moto_server.endpoint}'\n"
        f"access_key = '{moto_server.access_key}'\nsecret_key = '{moto_server.secret_key}'\n"
        "region = 'us-east-1'\naddressing_style = 'path'\n"
        f"[buckets.origin.cdn]\nprovider = 'cloudfront'\nbase_url = '{CLOUDFRONT_BASE}'\n"
        f"key_pair_id = 'K2JCJMDEHXQW5F'\nprivate_key_file = '{pem}'\n"
        "[buckets.origin.cdn.invalidation]\nenabled = true\n"
        f"endpoint = '{cloudfront.endpoint}'\ndistribution_id = '{DISTRIBUTION_ID}'\n"
        f"access_key_id = '{ACCESS_KEY_ID}'\nsecret_access_key_env = 'CDN_TEST_AWS_SECRET'\n"
        "[buckets.scanned]\nbackend = 'local'\n"
        f"[buckets.scanned.scan]\nclamd = '{clamd.tcp_address}'\n"
        f"[buckets.scanned.cdn]\nprovider = 'bunny'\nbase_url = '{BUNNY_BASE}'\n"
        "token_key_env = 'CDN_TEST_BUNNY_TOKEN_KEY'\n"
        "[buckets.scanned.cdn.invalidation]\nenabled = true\n"
        f"endpoint = '{bunny.endpoint}'\napi_key_env = 'CDN_TEST_BUNNY_API_KEY'\n"
    )
    env = {
        "GATEWAY_CONFIG": str(config),
        "STORAGE_URL_SECRET": "cdn-s3-tests-url-secret",
        **SECRETS_ENV,
    }
    with run_gateway(env, tmp_path / "data") as gateway:
        yield gateway


@pytest.fixture
def client(running: RunningGateway) -> Iterator[Client]:
    with Client(running.target, timeout=120) as client:
        yield client


def test_every_route_of_an_s3_bucket_behind_cloudfront(
    running: RunningGateway,
    client: Client,
    moto_server: MotoServer,
    apis: tuple[CloudFrontApi, BunnyApi],
) -> None:
    cloudfront, _ = apis
    client.put_bytes("page.html", b"<p>hi</p>", bucket="origin")
    assert cloudfront.take().paths == ["/media/page.html"]
    assert client.sign_url("page.html", bucket="origin").url.startswith(CLOUDFRONT_BASE)
    store = client.sign_url("page.html", bucket="origin", route="store")
    assert store.route == "store"
    assert store.url.startswith(moto_server.endpoint)
    assert httpx.get(store.url, timeout=30).content == b"<p>hi</p>"
    gateway = client.sign_url("page.html", bucket="origin", route="gateway")
    assert gateway.url.startswith(running.http_url)
    assert httpx.get(gateway.url, timeout=30).content == b"<p>hi</p>"
    # An upload is the storage's by default, as before.
    upload = client.sign_url("new.html", bucket="origin", method="PUT")
    assert upload.route == "store"


def test_a_scanned_bucket_purges_only_the_keys_it_publishes(
    client: Client, apis: tuple[CloudFrontApi, BunnyApi]
) -> None:
    _, bunny = apis
    client.put_bytes("a.txt", b"clean text", bucket="scanned")
    assert bunny.take().paths == [f"{BUNNY_BASE}/a.txt"]
    client.put_bytes("b.txt", b"clean too", bucket="scanned")
    # Had the staging keys of either write been purged, they would come first.
    assert bunny.take().paths == [f"{BUNNY_BASE}/b.txt"]
    assert bunny.received.empty()
