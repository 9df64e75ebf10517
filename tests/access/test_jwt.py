"""Bearer JWTs against a JWKS served by a real local HTTP server: each bad
token refused with its reason, good ones accepted, key rotation picked up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.access.jwt import KeySet, TokenVerifier
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.identity import Proof
from tests.access.idp import (
    Clock,
    JwksServer,
    SigningKey,
    claims,
    hmac_signed,
    jwks_server,
    jwt_settings,
    tampered,
    unsigned,
)

RSA = SigningKey.rsa("rsa-1")
EC = SigningKey.ec("ec-1")


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    with jwks_server() as server:
        server.publish(RSA, EC)
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(idp: JwksServer, clock: Clock) -> TokenVerifier:
    settings = jwt_settings(idp.url)
    return TokenVerifier(settings, KeySet(settings, clock=clock))


async def refused(verifier: TokenVerifier, token: str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await verifier.verify(token)
    assert not token or token not in caught.value.message
    return caught.value


@pytest.mark.parametrize("key", [RSA, EC], ids=["RS256", "ES256"])
async def test_a_valid_token_gives_its_subject_groups_and_claims(
    verifier: TokenVerifier, key: SigningKey
) -> None:
    principal = await verifier.verify(key.sign(claims(sub="svc-billing", groups=["ops", "ci"])))

    assert principal.id == "svc-billing"
    assert principal.proof is Proof.JWT
    assert principal.groups == {"ops", "ci"}
    assert principal.claims["team"] == "red"
    with pytest.raises(TypeError):
        principal.claims["team"] = "blue"  # type: ignore[index]


async def test_an_eddsa_token_is_accepted(idp: JwksServer, verifier: TokenVerifier) -> None:
    ed = SigningKey.ed25519("ed-1")
    idp.publish(RSA, ed)

    assert (await verifier.verify(ed.sign(claims()))).id == "alice"


async def test_the_groups_claim_is_configurable(idp: JwksServer) -> None:
    verifier = TokenVerifier(jwt_settings(idp.url, groups_claim="roles"))

    principal = await verifier.verify(RSA.sign(claims(roles=["admins"])))

    assert principal.groups == {"admins"}


async def test_an_expired_token_is_token_expired(verifier: TokenVerifier) -> None:
    error = await refused(verifier, RSA.sign(claims(exp=int(time.time()) - 3600)))

    assert error.reason is Reason.TOKEN_EXPIRED
    assert "expired" in error.message


async def test_expiry_within_the_leeway_is_accepted(verifier: TokenVerifier) -> None:
    principal = await verifier.verify(RSA.sign(claims(exp=int(time.time()) - 5)))

    assert principal.id == "alice"


@pytest.mark.parametrize(
    ("token_claims", "detail"),
    [
        (claims(nbf=int(time.time()) + 3600), "not_yet_valid"),
        (claims(aud="another-service"), "audience"),
        (claims(iss="https://evil.test"), "issuer"),
        (claims(sub=None), "missing_claim"),
        (claims(sub=""), "missing_claim"),
        (claims(exp=None), "missing_claim"),
        (claims(groups="admins"), "malformed"),
    ],
    ids=["not-yet-valid", "other-audience", "other-issuer", "no-sub", "empty-sub", "no-exp",
         "groups-not-a-list"],
)  # fmt: skip
async def test_a_token_failing_a_check_is_refused_with_that_check(
    verifier: TokenVerifier, token_claims: dict[str, object], detail: str
) -> None:
    error = await refused(verifier, RSA.sign(token_claims))

    assert error.reason is Reason.TOKEN_INVALID
    assert error.metadata["detail"] == detail


async def test_a_tampered_payload_fails_the_signature(verifier: TokenVerifier) -> None:
    token = tampered(RSA.sign(claims(sub="alice")), sub="admin")

    error = await refused(verifier, token)

    assert (error.reason, error.metadata["detail"]) == (Reason.TOKEN_INVALID, "signature")


async def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    token = unsigned(claims(), {"alg": "none", "typ": "JWT", "kid": RSA.kid})

    error = await refused(verifier, token)

    assert (error.reason, error.metadata["detail"]) == (Reason.TOKEN_INVALID, "algorithm")


async def test_hmac_with_the_public_key_as_secret_is_refused(verifier: TokenVerifier) -> None:
    token = hmac_signed(claims(sub="admin"), RSA.public_pem(), RSA.kid)

    error = await refused(verifier, token)

    assert (error.reason, error.metadata["detail"]) == (Reason.TOKEN_INVALID, "algorithm")


async def test_an_hmac_secret_in_the_key_set_is_never_used(idp: JwksServer, clock: Clock) -> None:
    secret = b"a shared secret the IdP should not publish"
    oct_key = {"kty": "oct", "kid": "shared", "k": "YS1zaGFyZWQtc2VjcmV0"}
    idp.publish(RSA, extra=[oct_key])
    # Even with HS256 allowed by mistake in code (settings refuse it at load).
    settings = jwt_settings(idp.url, algorithms=("RS256", "HS256"))
    verifier = TokenVerifier(settings, KeySet(settings, clock=clock))

    error = await refused(verifier, hmac_signed(claims(), secret, "shared"))

    assert (error.reason, error.metadata["detail"]) == (Reason.TOKEN_INVALID, "unknown_key")


async def test_a_token_whose_algorithm_does_not_fit_its_key_is_refused(
    verifier: TokenVerifier,
) -> None:
    # Signed with the EC key but naming the RSA key's id.
    token = SigningKey("rsa-1", "ES256", EC.private).sign(claims())

    error = await refused(verifier, token)

    assert (error.reason, error.metadata["detail"]) == (Reason.TOKEN_INVALID, "algorithm")


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "x" * 50])
async def test_garbage_is_malformed(verifier: TokenVerifier, token: str) -> None:
    error = await refused(verifier, token)

    assert (error.reason, error.metadata["detail"]) == (Reason.TOKEN_INVALID, "malformed")


async def test_an_unknown_key_refetches_once_then_is_refused(
    idp: JwksServer, verifier: TokenVerifier, clock: Clock
) -> None:
    await verifier.verify(RSA.sign(claims()))
    assert idp.requests == 1
    stranger = SigningKey.rsa("stranger")
    clock.advance(31)

    error = await refused(verifier, stranger.sign(claims()))

    assert (error.reason, error.metadata["detail"]) == (Reason.TOKEN_INVALID, "unknown_key")
    assert idp.requests == 2


async def test_a_flood_of_unknown_key_ids_fetches_the_key_set_once(
    idp: JwksServer, verifier: TokenVerifier
) -> None:
    for index in range(20):
        error = await refused(
            verifier, SigningKey(f"made-up-{index}", "RS256", RSA.private).sign(claims())
        )
        assert error.metadata["detail"] == "unknown_key"

    assert idp.requests == 1


async def test_a_rotated_key_is_picked_up_on_its_first_token(
    idp: JwksServer, verifier: TokenVerifier, clock: Clock
) -> None:
    await verifier.verify(RSA.sign(claims()))
    rotated = SigningKey.rsa("rsa-2")
    idp.publish(rotated, RSA)
    clock.advance(31)

    principal = await verifier.verify(rotated.sign(claims(sub="bob")))

    assert principal.id == "bob"
    assert idp.requests == 2


async def test_the_key_set_is_refetched_when_old(
    idp: JwksServer, verifier: TokenVerifier, clock: Clock
) -> None:
    await verifier.verify(RSA.sign(claims()))
    idp.publish(EC)  # RSA retired
    clock.advance(3601)

    error = await refused(verifier, RSA.sign(claims()))

    assert error.metadata["detail"] == "unknown_key"


async def test_a_jwks_file_is_read(tmp_path: Path, idp: JwksServer) -> None:
    import json

    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [EC.jwk()]}))
    verifier = TokenVerifier(jwt_settings(str(path)))

    assert (await verifier.verify(EC.sign(claims(sub="carol")))).id == "carol"


async def test_an_unreachable_key_set_is_unavailable_not_internal(tmp_path: Path) -> None:
    verifier = TokenVerifier(jwt_settings(str(tmp_path / "gone.json")))

    error = await refused(verifier, RSA.sign(claims()))

    assert error.reason is Reason.BACKEND_UNAVAILABLE
