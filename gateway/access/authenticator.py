"""The gateway's authenticator: a bearer value is a static API key (looked up
by its hash) or a JWT; without one, a verified client certificate names the
caller; without either, the call is refused when authentication is on."""

from __future__ import annotations

import dataclasses

from gateway.access.api_keys import ApiKeys
from gateway.access.authn import Credentials
from gateway.access.jwt import TokenVerifier
from gateway.access.mtls import certificate_principal
from gateway.access.policy import Policy
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.identity import ANONYMOUS, Principal, Proof


class GatewayAuthenticator:
    """Implements authn.Authenticator with what the settings configure."""

    def __init__(
        self,
        *,
        api_keys: ApiKeys | None = None,
        tokens: TokenVerifier | None = None,
        mtls: bool = False,
        policy: Policy | None = None,
        required: bool = True,
    ) -> None:
        self._api_keys = api_keys or ApiKeys()
        self._tokens = tokens
        self._mtls = mtls
        self._policy = policy
        self._required = required

    async def authenticate(self, credentials: Credentials) -> Principal:
        if credentials.bearer is not None:
            principal = await self._bearer(credentials.bearer)
        elif credentials.peer_certificate is not None and self._mtls:
            principal = certificate_principal(credentials.peer_certificate)
        elif self._required:
            raise GatewayError(
                Reason.CREDENTIALS_MISSING,
                "this gateway needs credentials: a bearer token (authorization: Bearer ...) "
                "or a client certificate",
            )
        else:
            return ANONYMOUS
        if self._policy is not None:
            principal = dataclasses.replace(principal, groups=self._policy.groups_of(principal))
        return principal

    async def _bearer(self, bearer: str) -> Principal:
        if bearer and self._api_keys:
            entry = self._api_keys.lookup(bearer)
            if entry is not None:
                return Principal(entry.principal, Proof.API_KEY, entry.groups)
        # A JWT has three dot-separated parts; anything else was meant as a key
        # (when keys are configured: else it is a malformed token).
        jwt_shaped = bearer.count(".") == 2 or not self._api_keys
        if bearer and self._tokens is not None and jwt_shaped:
            return await self._tokens.verify(bearer)
        what = "API key" if self._api_keys else "bearer credential"
        raise GatewayError(Reason.CREDENTIALS_INVALID, f"the {what} is not known to this gateway")
