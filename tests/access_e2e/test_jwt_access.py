"""Bearer tokens end to end: a JWKS file, tokens minted here (pyjwt and
cryptography), a policy confining each team to {claims.team}/ — through
gRPC and through a signed URL, which carries the one claim the policy uses."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from storagegw.v1 import storage_pb2 as pb
from tests.access_e2e.tenants import Session, refusal
from tests.conftest import RunningGateway, run_gateway
from tests.rpc_calls import put_messages

ISSUER = "https://idp.test"
AUDIENCE = "storagegw"
POLICY = """
[[grants]]
principals = ["*"]
actions = ["read", "write", "list", "sign"]
buckets = ["*"]
prefixes = ["{claims.team}/"]
"""


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def token_gateway(tmp_path: Path, signing_key: rsa.RSAPrivateKey) -> Iterator[RunningGateway]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}))
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    env = {
        "STORAGE_BACKEND": "local",
        "GATEWAY_JWKS": str(jwks),
        "GATEWAY_JWT_ISSUER": ISSUER,
        "GATEWAY_JWT_AUDIENCE": AUDIENCE,
        "GATEWAY_POLICY": str(policy),
    }
    with run_gateway(env, tmp_path) as running:
        yield running


def _token(key: rsa.RSAPrivateKey, sub: str, team: str, **claims: object) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "team": team,
        "email": f"{sub}@corp.test",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "k1"})


def _as(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def test_a_token_confines_its_holder_to_its_teams_prefix(
    token_gateway: RunningGateway, signing_key: rsa.RSAPrivateKey
) -> None:
    alice = _token(signing_key, "alice", "blue")
    with grpc.insecure_channel(token_gateway.target) as channel:
        session = Session(channel)
        stub = session.stub
        stub.Put(put_messages("blue/plan.txt", b"blue plan"), metadata=_as(alice))
        assert refusal(stub.Put, put_messages("red/plan.txt", b"x"), _as(alice)) == (
            "PERMISSION_DENIED",
            "ACCESS_DENIED",
        )
        assert refusal(stub.Head, pb.HeadRequest(key="blue/plan.txt"), ()) == (
            "UNAUTHENTICATED",
            "CREDENTIALS_MISSING",
        )
        expired = _token(signing_key, "alice", "blue", exp=int(time.time()) - 3600)
        assert refusal(stub.Head, pb.HeadRequest(key="blue/plan.txt"), _as(expired)) == (
            "UNAUTHENTICATED",
            "TOKEN_EXPIRED",
        )
        signed: pb.SignUrlResponse = stub.SignUrl(
            pb.SignUrlRequest(key="blue/plan.txt", method=pb.SIGNED_METHOD_GET),
            metadata=_as(alice),
        )
    # The URL names alice and the team claim the policy uses, and no other claim.
    query = parse_qs(urlsplit(signed.url).query)
    assert query["X-Sgw-Principal"] == ["alice"]
    assert json.loads(query["X-Sgw-Claims"][0]) == {"team": "blue"}
    assert "corp.test" not in signed.url
    assert alice not in signed.url
    with httpx.Client(timeout=30) as http:
        answer = http.get(signed.url)
    assert (answer.status_code, answer.content) == (200, b"blue plan")


def test_a_token_for_another_audience_is_refused(
    token_gateway: RunningGateway, signing_key: rsa.RSAPrivateKey
) -> None:
    other = _token(signing_key, "alice", "blue", aud="another-service")
    with grpc.insecure_channel(token_gateway.target) as channel:
        code, reason = refusal(
            Session(channel).stub.List, pb.ListRequest(prefix="blue/"), _as(other)
        )
    assert (code, reason) == ("UNAUTHENTICATED", "TOKEN_INVALID")


def test_a_signed_url_whose_claims_were_altered_is_refused(
    token_gateway: RunningGateway, signing_key: rsa.RSAPrivateKey
) -> None:
    """The claim is signed into the URL: changing it breaks the signature."""
    alice = _token(signing_key, "alice", "blue")
    with grpc.insecure_channel(token_gateway.target) as channel:
        signed: pb.SignUrlResponse = Session(channel).stub.SignUrl(
            pb.SignUrlRequest(key="blue/plan.txt", method=pb.SIGNED_METHOD_GET),
            metadata=_as(alice),
        )
    forged = signed.url.replace("blue%22", "red%22")
    assert forged != signed.url
    with httpx.Client(timeout=30) as http:
        answer = http.get(forged)
    assert answer.status_code == 403
