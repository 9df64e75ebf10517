"""What the authentication section needs to start its gateways: certificates
made with trustme, an RS256 signing key with its JWKS file and a token, a
policy that grants the token's principal everything, and one variant per way
of calling (its gateway settings and its client's channel credentials and
metadata)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import jwt
import trustme
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://idp.bench.invalid"
AUDIENCE = "storagegw-bench"
SUBJECT = "bench-client"
TOKEN_LIFETIME_S = 6 * 3600  # longer than any run
POLICY = """\
[[grants]]
principals = ["*"]
actions = ["read", "write", "delete", "list", "sign", "admin"]
buckets = ["*"]
"""


@dataclass(frozen=True)
class Variant:
    """One way of calling the gateway: its settings and what its client brings."""

    name: str
    label: str  # as the tables show it
    env: dict[str, str] = field(default_factory=dict)
    credentials: grpc.ChannelCredentials | None = None
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Material:
    """The files and secrets of one run (all in a temp dir of the bench's)."""

    ca_pem: bytes
    server_cert: Path
    server_key: Path
    client_ca: Path
    client_cert_pem: bytes
    client_key_pem: bytes
    jwks: Path
    token: str
    policy: Path

    def tls(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca_pem)

    def mtls(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem,
            private_key=self.client_key_pem,
            certificate_chain=self.client_cert_pem,
        )


def make_material(directory: Path) -> Material:
    directory.mkdir(parents=True, exist_ok=True)
    server_ca, client_ca = trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    client_ca.cert_pem.write_to_path(str(directory / "client-ca.pem"))
    client = client_ca.issue_cert("client.bench.invalid", common_name=SUBJECT)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (directory / "jwks.json").write_text(
        json.dumps({"keys": [{**jwk, "kid": "bench", "use": "sig", "alg": "RS256"}]})
    )
    now = int(time.time())
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": now, "exp": now + TOKEN_LIFETIME_S},
        key,
        algorithm="RS256",
        headers={"kid": "bench"},
    )
    (directory / "policy.toml").write_text(POLICY)
    return Material(
        ca_pem=server_ca.cert_pem.bytes(),
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_ca=directory / "client-ca.pem",
        client_cert_pem=client.cert_chain_pems[0].bytes(),
        client_key_pem=client.private_key_pem.bytes(),
        jwks=directory / "jwks.json",
        token=token,
        policy=directory / "policy.toml",
    )


def variants(material: Material) -> list[Variant]:
    """none first (the baseline of every ratio); TLS alone so that what mutual
    TLS adds to it can be told apart; the JWT over plaintext, so that its cost
    is the token's alone."""
    tls_env = {
        "GATEWAY_TLS_CERT": str(material.server_cert),
        "GATEWAY_TLS_KEY": str(material.server_key),
    }
    jwt_env = {
        "GATEWAY_JWKS": str(material.jwks),
        "GATEWAY_JWT_ISSUER": ISSUER,
        "GATEWAY_JWT_AUDIENCE": AUDIENCE,
    }
    bearer = (("authorization", f"Bearer {material.token}"),)
    return [
        Variant("none", "none"),
        Variant("tls", "TLS", tls_env, material.tls()),
        Variant(
            "mtls",
            "mTLS",
            {**tls_env, "GATEWAY_TLS_CLIENT_CA": str(material.client_ca)},
            material.mtls(),
        ),
        Variant("jwt", "JWT", jwt_env, metadata=bearer),
        Variant(
            "jwt+policy",
            "JWT + policy",
            {**jwt_env, "GATEWAY_POLICY": str(material.policy)},
            metadata=bearer,
        ),
    ]
