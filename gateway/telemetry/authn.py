"""The authenticator, instrumented: each call's outcome (ok, or the reason
it was refused) and, when ok, how the caller proved who it is."""

from __future__ import annotations

from gateway.access.authn import Authenticator, Credentials
from gateway.domain.errors import GatewayError
from gateway.domain.identity import Principal
from gateway.telemetry.instruments import OK, GatewayMetrics


class InstrumentedAuthenticator:
    """Implements Authenticator over another."""

    def __init__(self, authenticator: Authenticator, metrics: GatewayMetrics) -> None:
        self._authenticator = authenticator
        self._metrics = metrics

    async def authenticate(self, credentials: Credentials) -> Principal:
        try:
            principal = await self._authenticator.authenticate(credentials)
        except GatewayError as error:
            self._metrics.authenticated(str(error.reason), "")
            raise
        self._metrics.authenticated(OK, principal.proof.value)
        return principal
