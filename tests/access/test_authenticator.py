"""The authenticator built from settings: API keys, then JWTs, then client
certificates; nothing at all refused when authentication is on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from gateway.access.api_keys import hash_key, new_key
from gateway.access.authn import Credentials, Unauthenticated
from gateway.access.policy import PolicyGuard
from gateway.access.settings import AccessSettings, load_access_settings
from gateway.access.setup import build_access
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.identity import ANONYMOUS, Proof
from tests.access.idp import AUDIENCE, ISSUER, JwksServer, SigningKey, claims, jwks_server
from tests.certs import cn_certificate, spiffe_certificate

KEY = new_key()
RSA = SigningKey.rsa("rsa-1")
POLICY = f"""
[groups]
admins = ["alice", "spiffe://corp/ns/ops/sa/admin"]

[[api_keys]]
principal = "ci-uploader"
sha256 = "{hash_key(KEY)}"
groups = ["ci"]

[[grants]]
groups = ["admins"]
actions = ["read"]
buckets = ["*"]
"""


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    with jwks_server() as server:
        server.publish(RSA)
        yield server


def settings_for(tmp_path: Path, idp: JwksServer, *, mtls: bool = True) -> AccessSettings:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    env = {
        "GATEWAY_JWKS": idp.url,
        "GATEWAY_JWT_ISSUER": ISSUER,
        "GATEWAY_JWT_AUDIENCE": AUDIENCE,
        "GATEWAY_POLICY": str(policy),
    }
    if mtls:
        env["GATEWAY_TLS_CLIENT_CA"] = str(tmp_path / "ca.pem")
    return load_access_settings(env, None)


async def refusal(settings: AccessSettings, credentials: Credentials) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await build_access(settings).authenticator.authenticate(credentials)
    return caught.value


async def test_an_api_key_names_its_principal_with_its_groups(
    tmp_path: Path, idp: JwksServer
) -> None:
    access = build_access(settings_for(tmp_path, idp))

    principal = await access.authenticator.authenticate(Credentials(bearer=KEY))

    assert (principal.id, principal.proof, principal.groups) == (
        "ci-uploader", Proof.API_KEY, {"ci"},
    )  # fmt: skip
    assert idp.requests == 0  # a key never reaches the identity provider


async def test_a_wrong_api_key_is_credentials_invalid(tmp_path: Path, idp: JwksServer) -> None:
    error = await refusal(settings_for(tmp_path, idp), Credentials(bearer=new_key()))

    assert error.reason is Reason.CREDENTIALS_INVALID


async def test_a_jwt_gets_the_policy_groups_added(tmp_path: Path, idp: JwksServer) -> None:
    access = build_access(settings_for(tmp_path, idp))

    principal = await access.authenticator.authenticate(Credentials(bearer=RSA.sign(claims())))

    assert (principal.id, principal.proof) == ("alice", Proof.JWT)
    assert principal.groups == {"finance", "admins"}


async def test_a_bad_jwt_keeps_its_reason(tmp_path: Path, idp: JwksServer) -> None:
    error = await refusal(
        settings_for(tmp_path, idp), Credentials(bearer=RSA.sign(claims(aud="other")))
    )

    assert error.reason is Reason.TOKEN_INVALID


async def test_the_bearer_wins_over_a_client_certificate(tmp_path: Path, idp: JwksServer) -> None:
    pem = spiffe_certificate(trustme.CA(), "spiffe://corp/ns/billing/sa/api")
    access = build_access(settings_for(tmp_path, idp))

    principal = await access.authenticator.authenticate(
        Credentials(bearer=KEY, peer_certificate=pem)
    )

    assert principal.id == "ci-uploader"


async def test_a_client_certificate_names_the_caller(tmp_path: Path, idp: JwksServer) -> None:
    ca = trustme.CA()
    access = build_access(settings_for(tmp_path, idp))

    admin = await access.authenticator.authenticate(
        Credentials(peer_certificate=spiffe_certificate(ca, "spiffe://corp/ns/ops/sa/admin"))
    )
    api = await access.authenticator.authenticate(
        Credentials(peer_certificate=cn_certificate(ca, "billing-api"))
    )

    assert (admin.id, admin.proof, admin.groups) == (
        "spiffe://corp/ns/ops/sa/admin", Proof.MTLS, {"admins"},
    )  # fmt: skip
    assert (api.id, api.groups) == ("billing-api", frozenset())


async def test_a_certificate_is_ignored_without_mtls(tmp_path: Path, idp: JwksServer) -> None:
    pem = cn_certificate(trustme.CA(), "billing-api")

    error = await refusal(
        settings_for(tmp_path, idp, mtls=False), Credentials(peer_certificate=pem)
    )

    assert error.reason is Reason.CREDENTIALS_MISSING


async def test_no_credentials_is_credentials_missing(tmp_path: Path, idp: JwksServer) -> None:
    error = await refusal(settings_for(tmp_path, idp), Credentials())

    assert error.reason is Reason.CREDENTIALS_MISSING
    assert "credentials" in error.message


async def test_with_only_mtls_a_bearer_is_credentials_invalid(tmp_path: Path) -> None:
    settings = load_access_settings({"GATEWAY_TLS_CLIENT_CA": str(tmp_path / "ca.pem")}, None)

    error = await refusal(settings, Credentials(bearer="anything"))

    assert error.reason is Reason.CREDENTIALS_INVALID


async def test_with_only_jwt_a_non_jwt_bearer_is_a_malformed_token(idp: JwksServer) -> None:
    settings = load_access_settings(
        {"GATEWAY_JWKS": idp.url, "GATEWAY_JWT_ISSUER": ISSUER, "GATEWAY_JWT_AUDIENCE": AUDIENCE},
        None,
    )

    error = await refusal(settings, Credentials(bearer="not-a-token"))

    assert (error.reason, error.metadata["detail"]) == (Reason.TOKEN_INVALID, "malformed")


async def test_authentication_off_is_anonymous_with_no_guards() -> None:
    access = build_access(load_access_settings({}, None))

    assert isinstance(access.authenticator, Unauthenticated)
    assert await access.authenticator.authenticate(Credentials(bearer="x")) is ANONYMOUS
    assert access.guards == ()
    assert access.policy is None
    await access.close()


async def test_a_policy_brings_its_guard(tmp_path: Path, idp: JwksServer) -> None:
    access = build_access(settings_for(tmp_path, idp))

    assert access.policy is not None
    assert [type(guard) for guard in access.guards] == [PolicyGuard]
    await access.close()
