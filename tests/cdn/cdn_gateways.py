"""Gateways with CDN buckets for tests/cdn: their configuration, its secrets,
and the stand-ins of the CDNs' invalidation APIs they purge through."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tests.cdn.standins import ACCESS_KEY_ID, BUNNY_API_KEY, DISTRIBUTION_ID, SECRET_ACCESS_KEY

CLOUDFRONT_BASE = "https://d111111abcdef8.cloudfront.net/media"
BUNNY_BASE = "https://clips.b-cdn.net"
KEY_PAIR_ID = "K2JCJMDEHXQW5F"
BUNNY_TOKEN_KEY = "bunny-token-key-0b1c2d3e-4f5a"
URL_SECRET = "cdn-tests-url-secret-0123456789abcdef"
# What the gateway's environment holds (the config names these variables).
SECRETS_ENV = {
    "CDN_TEST_BUNNY_TOKEN_KEY": BUNNY_TOKEN_KEY,
    "CDN_TEST_AWS_SECRET": SECRET_ACCESS_KEY,
    "CDN_TEST_BUNNY_API_KEY": BUNNY_API_KEY,
}


def write_private_key(path: Path) -> RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def config_text(pem: Path, cloudfront_api: str = "", bunny_api: str = "") -> str:
    """Buckets: media (memory) behind CloudFront (canned policy), clips
    (local) behind BunnyCDN, custom (memory) behind CloudFront with a custom
    policy, plain (memory) without a CDN. With an API's endpoint, media or
    clips purge through it."""
    text = (
        "default_bucket = 'media'\n"
        "[buckets.media]\nbackend = 'memory'\n"
        f"[buckets.media.cdn]\nprovider = 'cloudfront'\nbase_url = '{CLOUDFRONT_BASE}'\n"
        f"key_pair_id = '{KEY_PAIR_ID}'\nprivate_key_file = '{pem}'\n"
    )
    if cloudfront_api:
        text += (
            "[buckets.media.cdn.invalidation]\nenabled = true\n"
            f"endpoint = '{cloudfront_api}'\ndistribution_id = '{DISTRIBUTION_ID}'\n"
            f"access_key_id = '{ACCESS_KEY_ID}'\nsecret_access_key_env = 'CDN_TEST_AWS_SECRET'\n"
        )
    text += (
        "[buckets.clips]\nbackend = 'local'\n"
        f"[buckets.clips.cdn]\nprovider = 'bunny'\nbase_url = '{BUNNY_BASE}'\n"
        "token_key_env = 'CDN_TEST_BUNNY_TOKEN_KEY'\n"
    )
    if bunny_api:
        text += (
            "[buckets.clips.cdn.invalidation]\nenabled = true\n"
            f"endpoint = '{bunny_api}'\napi_key_env = 'CDN_TEST_BUNNY_API_KEY'\n"
        )
    text += (
        "[buckets.custom]\nbackend = 'memory'\n"
        f"[buckets.custom.cdn]\nprovider = 'cloudfront'\nbase_url = '{CLOUDFRONT_BASE}'\n"
        f"key_pair_id = '{KEY_PAIR_ID}'\nprivate_key_file = '{pem}'\npolicy = 'custom'\n"
        "[buckets.plain]\nbackend = 'memory'\n"
    )
    return text


def gateway_env(tmp_path: Path, cloudfront_api: str = "", bunny_api: str = "") -> dict[str, str]:
    """The environment of a gateway with the CDN buckets (key and config
    written under tmp_path)."""
    pem = tmp_path / "cloudfront.pem"
    if not pem.exists():
        write_private_key(pem)
    config = tmp_path / "buckets.toml"
    config.write_text(config_text(pem, cloudfront_api, bunny_api))
    return {"GATEWAY_CONFIG": str(config), "STORAGE_URL_SECRET": URL_SECRET, **SECRETS_ENV}


def readme_cdn_secrets(directory: Path) -> dict[str, str]:
    """The secrets the README's CDN example names: its key files, written
    in directory, and the variables it names (returned)."""
    write_private_key(directory / "cloudfront.pem")
    (directory / "bunny-api.key").write_text("readme-bunny-api-key\n")
    return {"CDN_AWS_SECRET_ACCESS_KEY": "readme-aws-secret", "BUNNY_TOKEN_KEY": "readme-tok"}
