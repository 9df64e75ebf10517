"""Verified bearer tokens are remembered until they expire or the key set
changes, never longer, and the cache stays within its size."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.access.jwt import KeySet, TokenVerifier
from gateway.access.token_cache import VerifiedTokens
from gateway.domain.errors import GatewayError
from gateway.domain.identity import Principal, Proof
from tests.access.idp import Clock, JwksServer, SigningKey, claims, jwks_server, jwt_settings

RSA = SigningKey.rsa("rsa-cache")
ALICE = Principal("alice", Proof.JWT)
BOB = Principal("bob", Proof.JWT)


class WallClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_remembered_until_its_expiry() -> None:
    wall = WallClock()
    cache = VerifiedTokens(clock=wall)
    cache.put("token-a", ALICE, expires_at=wall.now + 60, key_set=1)

    assert cache.get("token-a", 1) is ALICE
    wall.now += 60
    assert cache.get("token-a", 1) is None
    assert len(cache) == 0


def test_another_key_set_or_a_stale_one_forgets_the_token() -> None:
    cache = VerifiedTokens(clock=WallClock())
    cache.put("token-a", ALICE, expires_at=2_000_000.0, key_set=1)
    cache.put("token-b", BOB, expires_at=2_000_000.0, key_set=1)

    assert cache.get("token-a", 2) is None
    assert cache.get("token-b", None) is None
    assert len(cache) == 0


def test_an_expired_token_is_not_stored() -> None:
    wall = WallClock()
    cache = VerifiedTokens(clock=wall)
    cache.put("token-a", ALICE, expires_at=wall.now, key_set=1)

    assert cache.get("token-a", 1) is None


def test_the_cache_keeps_at_most_its_capacity_dropping_the_oldest() -> None:
    cache = VerifiedTokens(capacity=3, clock=WallClock())
    for index in range(5):
        cache.put(f"token-{index}", Principal(f"p{index}", Proof.JWT), 2_000_000.0, 1)

    assert len(cache) == 3
    assert cache.get("token-0", 1) is None
    assert cache.get("token-1", 1) is None
    assert [cache.get(f"token-{i}", 1) for i in (2, 3, 4)] == [
        Principal(f"p{i}", Proof.JWT) for i in (2, 3, 4)
    ]


def test_tokens_are_not_kept_in_clear() -> None:
    cache = VerifiedTokens(clock=WallClock())
    cache.put("secret-token-value", ALICE, 2_000_000.0, 1)

    assert all(b"secret-token-value" not in key for key in cache._entries)


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    with jwks_server() as server:
        server.publish(RSA)
        yield server


async def test_the_verifier_checks_a_repeated_token_once(idp: JwksServer) -> None:
    settings = jwt_settings(idp.url)
    verifier = TokenVerifier(settings, KeySet(settings, clock=Clock()))
    token = RSA.sign(claims(sub="carol"))

    first = await verifier.verify(token)
    second = await verifier.verify(token)

    assert first.id == "carol"
    assert second is first  # the remembered principal, not a second verification
    assert len(verifier.verified) == 1
    assert idp.requests == 1


async def test_a_refused_token_is_not_remembered(idp: JwksServer) -> None:
    settings = jwt_settings(idp.url)
    verifier = TokenVerifier(settings, KeySet(settings, clock=Clock()))
    stranger = SigningKey.rsa("stranger")

    for _ in range(2):
        with pytest.raises(GatewayError):
            await verifier.verify(stranger.sign(claims()))

    assert len(verifier.verified) == 0


async def test_a_retired_key_is_refused_once_the_key_set_is_refetched(idp: JwksServer) -> None:
    clock = Clock()
    settings = jwt_settings(idp.url)
    verifier = TokenVerifier(settings, KeySet(settings, clock=clock))
    token = RSA.sign(claims())
    await verifier.verify(token)
    idp.publish(SigningKey.rsa("rsa-next"))  # RSA retired
    clock.advance(settings.max_age)

    with pytest.raises(GatewayError) as caught:
        await verifier.verify(token)

    assert caught.value.metadata["detail"] == "unknown_key"
