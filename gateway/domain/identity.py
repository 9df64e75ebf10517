"""Who calls: the principal every request carries from the front that
authenticated it to the guards at the core's door."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class Proof(enum.StrEnum):
    """How the caller proved who it is."""

    NONE = "none"  # authentication is off, or a route that needs none
    MTLS = "mtls"  # a client certificate the gateway's CA bundle trusts
    JWT = "jwt"  # a bearer token verified against the JWKS
    API_KEY = "api_key"  # a static key whose hash is in the configuration
    SIGNED_URL = "signed_url"  # a URL signed by this gateway for the principal


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller by name, with the groups it belongs to and, for a token, its
    claims, which policies may use (a prefix templated by {claims.team})."""

    id: str
    proof: Proof
    groups: frozenset[str] = frozenset()
    claims: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def authenticated(self) -> bool:
        return self.proof is not Proof.NONE


# The caller when authentication is off (the gateway on loopback, `make run`).
ANONYMOUS = Principal("anonymous", Proof.NONE)
