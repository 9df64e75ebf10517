"""The certificate files, read consistently and re-read when they change.

A reading is checked before it is used (the certificate and the key parse
and belong together, the client CA bundle parses), so a rotation caught half
way (a new certificate beside the old key) keeps the previous reading and is
tried again once the files change again. Files are compared by inode, size and
modification time: a replaced file, a rewritten one, and a Kubernetes secret
volume's symlink swap are all changes.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from gateway.domain.settings import ConfigError

log = logging.getLogger("storagegw")

# Per file: (device, inode, size, modification time in ns).
Signature = tuple[tuple[int, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert: Path
    key: Path
    # With a bundle: mutual TLS, every connection needs a client certificate
    # it verifies. Not optional: grpcio's Python API can require a client
    # certificate or ask for none, and a certificate asked for on one port
    # only would make the identity depend on the port.
    client_ca: Path | None = None

    @property
    def requires_client_cert(self) -> bool:
        return self.client_ca is not None

    def files(self) -> dict[str, Path]:
        """{setting: path} of the files in use."""
        named = {"GATEWAY_TLS_CERT": self.cert, "GATEWAY_TLS_KEY": self.key}
        if self.client_ca is not None:
            named["GATEWAY_TLS_CLIENT_CA"] = self.client_ca
        return named


@dataclass(frozen=True, slots=True)
class Certificates:
    """One consistent reading of the files."""

    cert_chain: bytes = field(repr=False)
    key: bytes = field(repr=False)
    client_ca: bytes | None = field(repr=False)
    # A server context holding them, for the signed-URL listener.
    context: ssl.SSLContext
    signature: Signature


def signature(tls: TlsSettings) -> Signature:
    """What identifies the files' current contents; OSError if one is gone."""
    stats = [os.stat(path) for path in tls.files().values()]
    return tuple((s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)


def read_certificates(tls: TlsSettings) -> Certificates:
    """The files' contents, checked; ConfigError names the setting at fault."""
    try:
        before = signature(tls)
    except OSError:
        before = ()  # _read below names the file
    data = {setting: _read(setting, path) for setting, path in tls.files().items()}
    cert_chain, key = data["GATEWAY_TLS_CERT"], data["GATEWAY_TLS_KEY"]
    client_ca = data.get("GATEWAY_TLS_CLIENT_CA")
    _check_pair(cert_chain, key)
    if client_ca is not None:
        _check_bundle(client_ca)
    context = server_context(tls)
    try:
        after = signature(tls)
    except OSError:
        after = ()
    if before != after:
        raise ConfigError("GATEWAY_TLS_CERT", "the TLS files changed while being read")
    return Certificates(cert_chain, key, client_ca, context, after)


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """The signed-URL listener's TLS server context: the certificate and key
    of tls. It asks for no client certificate, with or without mutual TLS on
    the gRPC port: a signed URL is its holder's credential, and its holders
    (browsers, other parties) have no certificate of the gateway's CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            "GATEWAY_TLS_KEY", f"cannot be used with GATEWAY_TLS_CERT: {error}"
        ) from None
    return context


class CertificateFiles:
    """The latest good reading of the files; refresh() re-reads them when
    they changed. Safe to call from several threads."""

    def __init__(self, tls: TlsSettings) -> None:
        self.tls = tls
        self.current = read_certificates(tls)
        self._lock = threading.Lock()
        self._refused: Signature = ()

    def refresh(self) -> Certificates:
        """The current reading, re-read first if the files changed since."""
        with self._lock:
            try:
                now = signature(self.tls)
            except OSError:
                return self.current  # a file missing mid-rotation: keep serving
            if now in (self.current.signature, self._refused):
                return self.current
            try:
                self.current = read_certificates(self.tls)
            except ConfigError as error:
                # Once per state of the files, not once per connection.
                self._refused = now
                log.warning(
                    "TLS files changed but cannot be used, keeping the previous ones: %s", error
                )
                return self.current
            log.info("TLS certificate reloaded from %s", self.tls.cert)
            return self.current


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(setting, f"cannot read {path}: {error.strerror}") from None


def _check_pair(cert_chain: bytes, key_pem: bytes) -> None:
    try:
        leaf = x509.load_pem_x509_certificates(cert_chain)[0]
    except ValueError:
        raise ConfigError("GATEWAY_TLS_CERT", "holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        reason = "is encrypted" if isinstance(error, TypeError) else "holds no PEM private key"
        raise ConfigError("GATEWAY_TLS_KEY", reason) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(encoding, public) != leaf.public_key().public_bytes(
        encoding, public
    ):
        raise ConfigError("GATEWAY_TLS_KEY", "is not the key of GATEWAY_TLS_CERT's certificate")


def _check_bundle(client_ca: bytes) -> None:
    try:
        x509.load_pem_x509_certificates(client_ca)
    except ValueError:
        raise ConfigError("GATEWAY_TLS_CLIENT_CA", "holds no PEM certificate") from None
