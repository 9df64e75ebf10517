"""Builds the access layer from its settings: the authenticator the fronts
call and the guards the core runs at its door."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.access.authenticator import GatewayAuthenticator
from gateway.access.authn import Authenticator, Unauthenticated
from gateway.access.jwt import TokenVerifier
from gateway.access.policy import Policy, PolicyGuard
from gateway.access.settings import AccessSettings
from gateway.core.buckets import Guard


@dataclass(frozen=True, slots=True)
class Access:
    authenticator: Authenticator
    # The PolicyGuard when a policy is set (for Gateway(config, guards=...)).
    guards: tuple[Guard, ...] = ()
    policy: Policy | None = None
    settings: AccessSettings = field(default_factory=AccessSettings)

    async def close(self) -> None:
        """Nothing held open yet: the key set is fetched per refresh, with
        no lasting session. Kept so the composition root need not know."""


def build_access(settings: AccessSettings) -> Access:
    policy = settings.policy
    guards: tuple[Guard, ...] = (PolicyGuard(policy),) if policy is not None else ()
    if not settings.authenticates:
        return Access(Unauthenticated(), guards, policy, settings)
    authenticator = GatewayAuthenticator(
        api_keys=policy.api_keys if policy is not None else None,
        tokens=TokenVerifier(settings.jwt) if settings.jwt is not None else None,
        mtls=settings.mtls,
        policy=policy,
        required=True,
    )
    return Access(authenticator, guards, policy, settings)
