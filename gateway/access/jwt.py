"""Bearer tokens: JWTs verified against the identity provider's key set
(JWKS), with issuer, audience, expiry and not-before checked.

Only asymmetric algorithms from the allowed list are accepted: never "none",
never HMAC (a key set entry of kty "oct" is ignored, so a token "signed" with
public key material as an HMAC secret finds no key). The key set is cached;
a token naming an unknown key id refetches it, at most once per
refetch_interval, so key rotation is picked up without letting a flood of
made-up key ids hammer the provider. Fetching is blocking I/O and runs in a
worker thread. A token that verified is remembered (gateway.access.token_cache)
until it expires or the key set changes, so a client repeating its token pays
the signature check once.

Errors never quote the token or its contents.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jwt

from gateway.access.settings import JwtSettings
from gateway.access.token_cache import VerifiedTokens
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.identity import Principal, Proof

log = logging.getLogger("storagegw.access")

MAX_JWKS_BYTES = 1024 * 1024
# The key type each algorithm family signs with.
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def token_invalid(detail: str, message: str) -> GatewayError:
    return GatewayError(Reason.TOKEN_INVALID, message, detail=detail)


class KeySet:
    """The JWKS, fetched from a file or a URL and cached by key id."""

    def __init__(self, settings: JwtSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times the key set was read (for the log and tests)

    def generation(self) -> int | None:
        """Which fetch of the key set is current (it changes with every
        refetch); None when the set is due to be fetched again."""
        if self._fetched_at is None or self._clock() - self._fetched_at >= self._settings.max_age:
            return None
        return self.fetches

    async def find(self, kid: str | None) -> dict[str, Any] | None:
        """The JWK with this key id (or the only key, for a token without
        one), refetching the set if it is stale or the id is unknown."""
        async with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._settings.max_age
            unknown = kid is not None and kid not in self._keys
            may_refetch = (
                self._fetched_at is None
                or now - self._fetched_at >= self._settings.refetch_interval
            )
            if stale or (unknown and may_refetch):
                await self._refresh()
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        try:
            document = await asyncio.to_thread(self._read)
            keys = _usable_keys(document)
        except (OSError, ValueError) as error:
            # Keep the keys we had; without any, nothing can be verified now.
            self._fetched_at = self._clock()
            log.warning("cannot read the JWKS %s: %s", self._settings.jwks, error)
            if not self._keys:
                raise GatewayError(
                    Reason.BACKEND_UNAVAILABLE,
                    "the token signing keys (JWKS) cannot be read now; retry later",
                    detail="jwks",
                ) from None
            return
        self.fetches += 1
        self._keys = keys
        self._fetched_at = self._clock()

    def _read(self) -> object:
        source = self._settings.jwks
        if self._settings.jwks_is_url:
            request = urllib.request.Request(source, headers={"Accept": "application/json"})  # noqa: S310 - https, or http on loopback (settings)
            with urllib.request.urlopen(request, timeout=self._settings.fetch_timeout) as answer:  # noqa: S310
                body = answer.read(MAX_JWKS_BYTES + 1)
        else:
            body = Path(source).read_bytes()
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError(f"larger than {MAX_JWKS_BYTES} bytes")
        return json.loads(body)


def _usable_keys(document: object) -> dict[str, dict[str, Any]]:
    """The asymmetric signing keys of a JWKS document, by key id."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JWKS document (no "keys" array)')
    keys: dict[str, dict[str, Any]] = {}
    for index, key in enumerate(document["keys"]):
        if not isinstance(key, Mapping) or key.get("kty") not in _KEY_TYPES.values():
            continue  # "oct" (HMAC secrets) and unknown types are never used
        if key.get("use", "sig") != "sig":
            continue
        keys[str(key.get("kid", f"#{index}"))] = dict(key)
    return keys


class TokenVerifier:
    """Turns a bearer JWT into its principal, or raises TOKEN_EXPIRED /
    TOKEN_INVALID (with a detail saying which check failed)."""

    def __init__(
        self,
        settings: JwtSettings,
        keys: KeySet | None = None,
        verified: VerifiedTokens | None = None,
    ) -> None:
        self.settings = settings
        self.keys = keys or KeySet(settings)
        self.verified = verified if verified is not None else VerifiedTokens()

    async def verify(self, token: str) -> Principal:
        principal = self.verified.get(token, self.keys.generation())
        if principal is not None:
            return principal
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise token_invalid("malformed", "the bearer token is not a well-formed JWT") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.settings.algorithms:
            raise token_invalid(
                "algorithm",
                "the bearer token is signed with an algorithm the gateway does not accept "
                f"(accepted: {', '.join(self.settings.algorithms)})",
            )
        kid = header.get("kid")
        jwk = await self.keys.find(kid if isinstance(kid, str) else None)
        if jwk is None:
            raise token_invalid(
                "unknown_key", "the bearer token is signed by a key the identity provider "
                "does not publish",
            )  # fmt: skip
        if (
            _KEY_TYPES.get(algorithm[:2]) != jwk.get("kty")
            or jwk.get("alg", algorithm) != algorithm
        ):
            raise token_invalid(
                "algorithm", "the bearer token's algorithm does not match its signing key"
            )
        try:
            key = jwt.PyJWK(jwk, algorithm=algorithm)
        except jwt.PyJWTError:
            raise token_invalid(
                "unknown_key", "the signing key the bearer token names cannot be used"
            ) from None
        key_set = self.keys.fetches  # the generation that holds this key
        claims = self._decode(token, key, algorithm)
        principal = self._principal(claims)
        self.verified.put(token, principal, float(claims["exp"]), key_set)
        return principal

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise GatewayError(
                Reason.TOKEN_EXPIRED, "the bearer token has expired; get a new one"
            ) from None
        except jwt.PyJWTError as error:
            raise _refusal(error) from None

    def _principal(self, claims: dict[str, Any]) -> Principal:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise token_invalid("missing_claim", "the bearer token has no subject (sub)")
        groups = claims.get(self.settings.groups_claim, [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise token_invalid(
                "malformed",
                f"the bearer token's {self.settings.groups_claim!r} claim is not a list of strings",
            )
        return Principal(subject, Proof.JWT, frozenset(groups), MappingProxyType(claims))


def _refusal(error: jwt.PyJWTError) -> GatewayError:
    """TOKEN_INVALID for a failed check, naming the check, not the token."""
    checks: tuple[tuple[type[jwt.PyJWTError], str, str], ...] = (
        (jwt.InvalidSignatureError, "signature", "its signature does not verify"),
        (jwt.InvalidAudienceError, "audience", "it is meant for another audience"),
        (jwt.InvalidIssuerError, "issuer", "it comes from another issuer"),
        (jwt.ImmatureSignatureError, "not_yet_valid", "it is not valid yet (nbf or iat)"),
        (jwt.MissingRequiredClaimError, "missing_claim", "it lacks a required claim"),
        (jwt.InvalidAlgorithmError, "algorithm", "its algorithm is not accepted"),
    )
    for kind, detail, why in checks:
        if isinstance(error, kind):
            if isinstance(error, jwt.MissingRequiredClaimError):
                why = f"it lacks the required claim {error.claim!r}"
            return token_invalid(detail, f"the bearer token is refused: {why}")
    return token_invalid("malformed", "the bearer token is refused: its contents are malformed")
