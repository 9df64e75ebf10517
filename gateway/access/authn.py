"""The interface between the fronts and authentication: what a call brings,
and who it proves to be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.domain.identity import ANONYMOUS, Principal


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a call brought, as its front found it."""

    # The value after "Bearer " in the authorization metadata or header: a JWT
    # or a static API key. Never logged.
    bearer: str | None = None
    # The client certificate (PEM) the TLS handshake verified against the
    # client CA bundle; None without mutual TLS.
    peer_certificate: bytes | None = None


class Authenticator(Protocol):
    """Turns a call's credentials into its principal, or raises GatewayError
    (CREDENTIALS_MISSING, CREDENTIALS_INVALID, TOKEN_EXPIRED, TOKEN_INVALID)."""

    async def authenticate(self, credentials: Credentials) -> Principal: ...


class Unauthenticated:
    """Authentication off: every call is ANONYMOUS, whatever it brings."""

    async def authenticate(self, credentials: Credentials) -> Principal:
        return ANONYMOUS
