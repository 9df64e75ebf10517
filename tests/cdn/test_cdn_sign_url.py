"""SignUrl on a gateway with CDN buckets: a GET is the CDN's URL, signed for
it (CloudFront: as botocore signs; Bunny: its token), the gateway's and the
storage's routes stay available on request, and what a CDN cannot serve is
refused with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from botocore.signers import CloudFrontSigner as BotocoreSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from gateway.cdn.bunny import signed_url
from storagegw import Client, InvalidArgument, RouteNotAvailable
from tests.cdn.cdn_gateways import (
    BUNNY_BASE,
    BUNNY_TOKEN_KEY,
    CLOUDFRONT_BASE,
    KEY_PAIR_ID,
    gateway_env,
)
from tests.conftest import RunningGateway, run_gateway

SHA1 = hashes.SHA1()  # noqa: S303 - CloudFront's documented algorithm


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    directory = tmp_path_factory.mktemp("cdn")
    with run_gateway(gateway_env(directory), directory / "data") as running:
        yield running


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[Client]:
    with Client(gateway.target) as client:
        yield client


def private_key(gateway: RunningGateway) -> RSAPrivateKey:
    pem = (gateway.data_dir.parent / "cloudfront.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, RSAPrivateKey)
    return key


def test_a_get_is_the_cloudfront_url_botocore_would_sign(
    gateway: RunningGateway, client: Client
) -> None:
    client.put_bytes("photos/cat one.jpg", b"meow", bucket="media")
    signed = client.sign_url("photos/cat one.jpg", bucket="media", expires_in=600)
    assert signed.route == "cdn"
    assert signed.method == "GET"
    assert signed.url.startswith(f"{CLOUDFRONT_BASE}/photos/cat%20one.jpg?Expires=")
    assert signed.expire_time is not None
    key = private_key(gateway)
    theirs = BotocoreSigner(KEY_PAIR_ID, lambda m: key.sign(m, padding.PKCS1v15(), SHA1))
    expiry = datetime.fromtimestamp(signed.expire_time.timestamp(), UTC)
    resource = f"{CLOUDFRONT_BASE}/photos/cat%20one.jpg"
    assert signed.url == theirs.generate_presigned_url(resource, date_less_than=expiry)


def test_a_custom_policy_binds_the_client_ip(gateway: RunningGateway, client: Client) -> None:
    signed = client.sign_url("v.mp4", bucket="custom", client_ip="198.51.100.0/24")
    key = private_key(gateway)
    theirs = BotocoreSigner(KEY_PAIR_ID, lambda m: key.sign(m, padding.PKCS1v15(), SHA1))
    assert signed.expire_time is not None
    expiry = datetime.fromtimestamp(signed.expire_time.timestamp(), UTC)
    policy = theirs.build_policy(f"{CLOUDFRONT_BASE}/v.mp4", expiry, ip_address="198.51.100.0/24")
    assert signed.url == theirs.generate_presigned_url(f"{CLOUDFRONT_BASE}/v.mp4", policy=policy)
    with pytest.raises(InvalidArgument, match="custom policy"):
        client.sign_url("v.mp4", bucket="media", client_ip="198.51.100.7")
    starts = datetime.fromtimestamp(expiry.timestamp() - 60, UTC)
    later = client.sign_url("v.mp4", bucket="custom", not_before=starts)
    assert later.expire_time is not None
    expiry = datetime.fromtimestamp(later.expire_time.timestamp(), UTC)
    policy = theirs.build_policy(f"{CLOUDFRONT_BASE}/v.mp4", expiry, date_greater_than=starts)
    assert later.url == theirs.generate_presigned_url(f"{CLOUDFRONT_BASE}/v.mp4", policy=policy)
    with pytest.raises(InvalidArgument, match="CDN URLs only"):
        client.sign_url("v.mp4", bucket="custom", route="gateway", not_before=starts)


def test_a_get_of_a_bunny_bucket_carries_bunnys_token(client: Client) -> None:
    signed = client.sign_url("clip.mp4", bucket="clips", client_ip="203.0.113.9")
    assert signed.route == "cdn"
    assert signed.expire_time is not None
    expires = int(signed.expire_time.timestamp())
    url = f"{BUNNY_BASE}/clip.mp4"
    assert signed.url == signed_url(url, BUNNY_TOKEN_KEY, expires, user_ip="203.0.113.9")


def test_the_gateway_route_still_serves_the_object(gateway: RunningGateway, client: Client) -> None:
    client.put_bytes("doc.txt", b"through the gateway", bucket="media")
    signed = client.sign_url("doc.txt", bucket="media", route="gateway")
    assert signed.route == "gateway"
    assert signed.url.startswith(gateway.http_url)
    response = httpx.get(signed.url, timeout=30)
    assert response.status_code == 200
    assert response.content == b"through the gateway"
    # A download (an attachment) is not a CDN's to honour: the default is the gateway then.
    download = client.sign_url("doc.txt", bucket="media", download=True)
    assert download.route == "gateway"
    assert httpx.get(download.url, timeout=30).content == b"through the gateway"


def test_uploads_go_to_the_gateway_by_default(client: Client) -> None:
    signed = client.sign_url("up.bin", bucket="media", method="PUT")
    assert signed.route == "gateway"
    response = httpx.put(signed.url, content=b"uploaded", headers=signed.headers, timeout=30)
    assert response.status_code == 200, response.text
    assert client.get_bytes("up.bin", bucket="media") == b"uploaded"


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_a_cdn_url_for_an_upload_is_refused(client: Client, method: str) -> None:
    with pytest.raises(InvalidArgument, match="reads only") as caught:
        client.sign_url("up.bin", bucket="media", method=method, route="cdn")
    assert caught.value.reason == "ROUTE_METHOD_NOT_ALLOWED"


def test_routes_a_bucket_lacks_are_refused(client: Client) -> None:
    with pytest.raises(RouteNotAvailable, match="no CDN") as caught:
        client.sign_url("k", bucket="plain", route="cdn")
    assert caught.value.reason == "ROUTE_NOT_AVAILABLE"
    with pytest.raises(RouteNotAvailable, match="does not sign URLs"):
        client.sign_url("k", bucket="media", route="store")
    with pytest.raises(InvalidArgument, match="CDN URLs only"):
        client.sign_url("k", bucket="plain", client_ip="203.0.113.9")
    # Without a CDN, nothing changes: the gateway signs.
    assert client.sign_url("k", bucket="plain").route == "gateway"


def test_the_cli_prints_the_cdn_or_the_gateway_url(
    gateway: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    from storagegw.cli import main

    target = ["--target", gateway.target, "--bucket", "media"]
    assert main([*target, "sign", "k"]) == 0
    assert capsys.readouterr().out.startswith(f"{CLOUDFRONT_BASE}/k?Expires=")
    assert main([*target, "sign", "k", "--route", "gateway"]) == 0
    assert capsys.readouterr().out.startswith(gateway.http_url)


def test_config_errors_name_the_setting(tmp_path: Path) -> None:
    from gateway import config as config_module
    from gateway.domain.settings import ConfigError

    env = gateway_env(tmp_path)
    config = Path(env["GATEWAY_CONFIG"])
    text = config.read_text()
    settings = {**env, "STORAGE_BASE_PATH": str(tmp_path)}
    config.write_text(text.replace("provider = 'bunny'", "provider = 'akamai'"))
    with pytest.raises(ConfigError, match=r"buckets\.clips\.cdn\.provider"):
        config_module.load(settings)
    config.write_text(text)
    with pytest.raises(ConfigError, match="CDN_TEST_BUNNY_TOKEN_KEY is not set"):
        config_module.load({**settings, "CDN_TEST_BUNNY_TOKEN_KEY": ""})
    config.write_text(text.replace("cloudfront.pem", "missing.pem", 1))
    with pytest.raises(ConfigError, match=r"buckets\.media\.cdn\.private_key_file"):
        config_module.load(settings)


def test_the_loaded_configuration_shows_no_secret(tmp_path: Path) -> None:
    from gateway import config as config_module
    from tests.cdn.cdn_gateways import SECRETS_ENV
    from tests.cdn.standins import ACCESS_KEY_ID

    env = gateway_env(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    loaded = config_module.load({**env, "STORAGE_BASE_PATH": str(tmp_path)})
    shown = f"{loaded!r} {loaded.buckets!r}"
    assert "cloudfront" in shown  # the CDN settings are in it
    for secret in SECRETS_ENV.values():
        assert secret not in shown
    assert "PRIVATE KEY" not in shown
    assert ACCESS_KEY_ID not in shown
