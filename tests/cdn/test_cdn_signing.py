"""CDN URL signing against the providers' own references: CloudFront URLs
equal botocore's CloudFrontSigner's and verify with the public key; BunnyCDN
tokens equal the published vectors of Bunny's own signing code."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.signers import CloudFrontSigner as BotocoreSigner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from gateway.cdn.bunny import BunnySigner, signed_url
from gateway.cdn.cloudfront import CloudFrontSigner, policy_statement
from gateway.cdn.secret import Secret
from gateway.domain.errors import GatewayError, Reason

# CloudFront signs with RSA-SHA1 (its documented algorithm).
SHA1 = hashes.SHA1()  # noqa: S303
KEY_PAIR_ID = "K2JCJMDEHXQW5F"
BASE = "https://d111111abcdef8.cloudfront.net/media"
EXPIRES = 1767290400


@pytest.fixture(scope="module")
def private_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def botocore_signer(key: RSAPrivateKey) -> BotocoreSigner:
    return BotocoreSigner(KEY_PAIR_ID, lambda message: key.sign(message, padding.PKCS1v15(), SHA1))


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


def test_the_canned_policy_statement_is_the_documented_one() -> None:
    # The statement of AWS's "Create a signed URL using a canned policy" page
    # (CloudFront Developer Guide), for its example URL and expiry.
    url = "https://d111111abcdef8.cloudfront.net/image.jpg?color=red&size=medium"
    assert policy_statement(url, EXPIRES) == (
        '{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/image.jpg?color=red'
        '&size=medium","Condition":{"DateLessThan":{"AWS:EpochTime":1767290400}}}]}'
    )


@pytest.mark.parametrize("key", ["photos/cat.jpg", "a b/ü+%.txt"])
def test_a_canned_url_is_botocores_and_verifies(private_key: RSAPrivateKey, key: str) -> None:
    ours = CloudFrontSigner(BASE, KEY_PAIR_ID, private_key).sign(key, EXPIRES)
    resource = ours.split("?", 1)[0]
    expiry = datetime.fromtimestamp(EXPIRES, UTC)
    assert ours == botocore_signer(private_key).generate_presigned_url(resource, expiry)
    query = parse_qs(urlsplit(ours).query)
    assert query["Expires"] == [str(EXPIRES)]
    assert query["Key-Pair-Id"] == [KEY_PAIR_ID]
    signature = _unb64(query["Signature"][0])
    statement = policy_statement(resource, EXPIRES).encode()
    private_key.public_key().verify(signature, statement, padding.PKCS1v15(), SHA1)


@pytest.mark.parametrize("client_ip", ["", "203.0.113.7", "198.51.100.0/24"])
def test_a_custom_policy_url_is_botocores_and_verifies(
    private_key: RSAPrivateKey, client_ip: str
) -> None:
    signer = CloudFrontSigner(BASE, KEY_PAIR_ID, private_key, "custom")
    ours = signer.sign("videos/intro.mp4", EXPIRES, client_ip)
    resource = f"{BASE}/videos/intro.mp4"
    theirs = botocore_signer(private_key)
    expiry = datetime.fromtimestamp(EXPIRES, UTC)
    policy = theirs.build_policy(resource, expiry, ip_address=client_ip or None)
    assert ours == theirs.generate_presigned_url(resource, policy=policy)
    query = parse_qs(urlsplit(ours).query)
    statement = _unb64(query["Policy"][0])
    condition = json.loads(statement)["Statement"][0]["Condition"]
    assert condition["DateLessThan"] == {"AWS:EpochTime": EXPIRES}
    if client_ip:
        wanted = client_ip if "/" in client_ip else f"{client_ip}/32"
        assert condition["IpAddress"] == {"AWS:SourceIp": wanted}
    signature = _unb64(query["Signature"][0])
    private_key.public_key().verify(signature, statement, padding.PKCS1v15(), SHA1)
    tampered = statement.replace(str(EXPIRES).encode(), str(EXPIRES + 1).encode())
    with pytest.raises(InvalidSignature):
        private_key.public_key().verify(signature, tampered, padding.PKCS1v15(), SHA1)


def test_cloudfront_refuses_what_its_policy_cannot_say(private_key: RSAPrivateKey) -> None:
    canned = CloudFrontSigner(BASE, KEY_PAIR_ID, private_key)
    with pytest.raises(GatewayError, match="custom policy") as caught:
        canned.sign("k", EXPIRES, "203.0.113.7")
    assert caught.value.reason is Reason.INVALID_ARGUMENT
    custom = CloudFrontSigner(BASE, KEY_PAIR_ID, private_key, "custom", require_ip=True)
    with pytest.raises(GatewayError, match="client_ip"):
        custom.sign("k", EXPIRES)
    with pytest.raises(GatewayError, match="IP address or CIDR"):
        custom.sign("k", EXPIRES, "not-an-ip")


# Bunny's vectors: github.com/BunnyWay/BunnyCDN.TokenAuthentication,
# python3/test_token.py (security key "SecurityKey", expires 1598024587).
BUNNY_KEY = "SecurityKey"
BUNNY_EXPIRES = 1598024587


def test_bunny_token_bound_to_an_ip_is_the_published_one() -> None:
    # test_with_ip_address
    signer = BunnySigner("https://token-tester.b-cdn.net", Secret(BUNNY_KEY))
    assert signer.sign("300kb.jpg", BUNNY_EXPIRES, "1.2.3.4") == (
        "https://token-tester.b-cdn.net/300kb.jpg"
        "?token=HS256-0A9FRzMI9ACT-5VKMPbJf7g8f7UHavqjBH1Z8HljoEk&expires=1598024587"
    )


def test_bunny_token_with_a_token_path_is_the_published_one() -> None:
    # test_with_path_allowed
    url = "https://token-tester.b-cdn.net/abc/300kb.jpg"
    assert signed_url(url, BUNNY_KEY, BUNNY_EXPIRES, token_path="/abc") == (
        "https://token-tester.b-cdn.net/abc/300kb.jpg"
        "?token=HS256-uVZvT3SbEoVKYJyDJgbcsDmSFf73cv-uNUVaJiKWpbQ"
        "&token_path=%2Fabc&expires=1598024587"
    )


def test_bunny_directory_tokens_are_the_published_ones() -> None:
    # test_directory_allowed, test_directory_and_path_allowed
    url = "https://token-tester.b-cdn.net/abc/"
    assert signed_url(url, BUNNY_KEY, BUNNY_EXPIRES, in_path=True) == (
        "https://token-tester.b-cdn.net/"
        "bcdn_token=HS256-bTMv4RVOkjx2UXLfVDl-JIygaxfSIQP8UCnCy7CILuY&expires=1598024587/abc/"
    )
    assert signed_url(url, BUNNY_KEY, BUNNY_EXPIRES, token_path="/abc", in_path=True) == (
        "https://token-tester.b-cdn.net/"
        "bcdn_token=HS256-uVZvT3SbEoVKYJyDJgbcsDmSFf73cv-uNUVaJiKWpbQ"
        "&token_path=%2Fabc&expires=1598024587/abc/"
    )


def test_a_bunny_directory_scope_covers_the_keys_directory() -> None:
    signer = BunnySigner("https://zone.b-cdn.net/hls", Secret(BUNNY_KEY), token_scope="directory")
    url = signer.sign("show/1/index.m3u8", BUNNY_EXPIRES)
    expected = signed_url(
        "https://zone.b-cdn.net/hls/show/1/index.m3u8",
        BUNNY_KEY,
        BUNNY_EXPIRES,
        token_path="/hls/show/1/",
        in_path=True,
    )
    assert url == expected
    assert url.startswith("https://zone.b-cdn.net/bcdn_token=HS256-")
    assert url.endswith("&token_path=%2Fhls%2Fshow%2F1%2F&expires=1598024587/hls/show/1/index.m3u8")


def test_bunny_binds_one_address_only() -> None:
    signer = BunnySigner("https://zone.b-cdn.net", Secret(BUNNY_KEY), require_ip=True)
    with pytest.raises(GatewayError, match="one IP address"):
        signer.sign("k", BUNNY_EXPIRES, "10.0.0.0/8")
    with pytest.raises(GatewayError, match="client_ip"):
        signer.sign("k", BUNNY_EXPIRES)


def test_signers_never_show_their_keys(private_key: RSAPrivateKey) -> None:
    bunny = BunnySigner("https://zone.b-cdn.net", Secret("bunny-token-key-xyz"))
    cloudfront = CloudFrontSigner(BASE, KEY_PAIR_ID, private_key)
    shown = f"{bunny!r} {bunny} {Secret('bunny-token-key-xyz')!r} {cloudfront!r} {cloudfront}"
    assert "bunny-token-key-xyz" not in shown
    assert "PRIVATE" not in shown
    assert "_private_key" not in shown


def test_a_custom_policy_start_time_is_botocores(private_key: RSAPrivateKey) -> None:
    signer = CloudFrontSigner(BASE, KEY_PAIR_ID, private_key, "custom")
    starts = EXPIRES - 3600
    ours = signer.sign("k", EXPIRES, "203.0.113.7", starts)
    theirs = botocore_signer(private_key)
    policy = theirs.build_policy(
        f"{BASE}/k",
        datetime.fromtimestamp(EXPIRES, UTC),
        date_greater_than=datetime.fromtimestamp(starts, UTC),
        ip_address="203.0.113.7",
    )
    assert ours == theirs.generate_presigned_url(f"{BASE}/k", policy=policy)
    with pytest.raises(GatewayError, match="before the URL's expiry"):
        signer.sign("k", EXPIRES, "", EXPIRES)
    with pytest.raises(GatewayError, match="custom policy"):
        CloudFrontSigner(BASE, KEY_PAIR_ID, private_key).sign("k", EXPIRES, "", starts)
    with pytest.raises(GatewayError, match="CloudFront URLs only"):
        BunnySigner("https://zone.b-cdn.net", Secret(BUNNY_KEY)).sign("k", EXPIRES, "", starts)
