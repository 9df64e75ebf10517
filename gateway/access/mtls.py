"""Mutual TLS identities: the principal of a verified client certificate is
its first URI SAN (a SPIFFE id such as spiffe://corp/ns/billing/sa/api) or,
failing that, its subject's common name.

The TLS handshake has already verified the certificate against the client CA
bundle; this only reads the name out of it. The name is remembered per
certificate (a bounded cache: the same bytes always name the same principal),
since parsing it on every call of a connection costs ~50 us per call.
"""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.x509.oid import NameOID

from gateway.domain.errors import GatewayError, Reason
from gateway.domain.identity import Principal, Proof


@functools.lru_cache(maxsize=1024)  # a refusal raises, and is not remembered
def certificate_principal(pem: bytes) -> Principal:
    """The principal a client certificate (PEM) names; CREDENTIALS_INVALID
    if it names none."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise GatewayError(
            Reason.CREDENTIALS_INVALID, "the client certificate cannot be read"
        ) from None
    name = _uri_san(certificate) or _common_name(certificate)
    if not name:
        raise GatewayError(
            Reason.CREDENTIALS_INVALID,
            "the client certificate names no identity (no URI SAN, no subject CN)",
        )
    return Principal(name, Proof.MTLS)


def _uri_san(certificate: x509.Certificate) -> str:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else ""


def _common_name(certificate: x509.Certificate) -> str:
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attribute.value
        text = value.decode() if isinstance(value, bytes) else value
        if text:
            return text
    return ""
