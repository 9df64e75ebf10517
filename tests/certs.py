"""Client certificates issued by a trustme CA: with a URI SAN (a SPIFFE id,
which trustme cannot put in, so it is signed here with the CA's key) or with
a common name only."""

from __future__ import annotations

import datetime

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def spiffe_certificate(ca: trustme.CA, uri: str, common_name: str = "") -> bytes:
    """A PEM leaf certificate with `uri` as its URI SAN, signed by the CA."""
    return spiffe_leaf(ca, uri, common_name)[0]


def spiffe_leaf(ca: trustme.CA, uri: str, common_name: str = "") -> tuple[bytes, bytes]:
    """(certificate, private key), PEM: a leaf with `uri` as its URI SAN,
    signed by the CA, that a client can present in a TLS handshake."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=True
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), private


def cn_certificate(ca: trustme.CA, common_name: str | None) -> bytes:
    """A trustme leaf whose only name besides a DNS SAN is its subject CN."""
    leaf = ca.issue_cert("client.invalid", common_name=common_name)
    return leaf.cert_chain_pems[0].bytes()
