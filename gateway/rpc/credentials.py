"""What a gRPC call brings to prove who calls: the bearer of its
"authorization" metadata and, with mutual TLS, the client certificate the
handshake verified. Judged by gateway.access (the Authenticator), not here."""

from __future__ import annotations

from typing import Any

from grpc.aio import ServicerContext

from gateway.access.authn import Credentials
from gateway.domain.errors import GatewayError, Reason

_SCHEME = "bearer "


def credentials_of(context: ServicerContext[Any, Any]) -> Credentials:
    """The call's credentials; CREDENTIALS_INVALID for an authorization value
    that is not one "Bearer <token>" (the value itself is never echoed)."""
    values = [
        value
        for name, value in context.invocation_metadata() or ()
        if name.lower() == "authorization"
    ]
    bearer = None
    if len(values) > 1:
        raise _malformed("more than one authorization value")
    if values:
        value = values[0]
        if not isinstance(value, str) or not value[: len(_SCHEME)].lower() == _SCHEME:
            raise _malformed('authorization must be "Bearer <token>"')
        bearer = value[len(_SCHEME) :].strip()
        if not bearer or " " in bearer:
            raise _malformed('authorization must be "Bearer <token>"')
    # With mutual TLS, the certificate gRPC verified against the client CA.
    certificate = next(iter(context.auth_context().get("x509_pem_cert") or ()), None)
    return Credentials(bearer=bearer, peer_certificate=certificate)


def _malformed(why: str) -> GatewayError:
    return GatewayError(Reason.CREDENTIALS_INVALID, f"credentials not accepted: {why}")
