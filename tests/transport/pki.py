"""Certificates for the transport tests, made with trustme, and TLS clients
that report what a handshake showed them."""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding


@dataclass
class Pki:
    """A server CA and leaf (127.0.0.1, localhost), and a client CA with one client."""

    directory: Path
    server_ca: trustme.CA = field(default_factory=trustme.CA)
    client_ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.server_ca.cert_pem.write_to_path(str(self.ca_file))
        self.client_ca.cert_pem.write_to_path(str(self.client_ca_file))
        self.install_server_cert(self.server_ca)
        client = self.client_ca.issue_cert("client.example", common_name="svc-billing")
        client.cert_chain_pems[0].write_to_path(str(self.client_cert_file))
        client.private_key_pem.write_to_path(str(self.client_key_file))

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def cert_file(self) -> Path:
        return self.directory / "server.pem"

    @property
    def key_file(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_ca_file(self) -> Path:
        return self.directory / "client-ca.pem"

    @property
    def client_cert_file(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key_file(self) -> Path:
        return self.directory / "client.key"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "GATEWAY_TLS_CERT": str(self.cert_file),
            "GATEWAY_TLS_KEY": str(self.key_file),
            **extra,
        }

    def mtls_env(self) -> dict[str, str]:
        return self.env(GATEWAY_TLS_CLIENT_CA=str(self.client_ca_file))

    def install_server_cert(self, ca: trustme.CA) -> bytes:
        """A new leaf of ca over the server's files, each replaced at once (as
        a deployment would); its DER."""
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        for blob, path in (
            (leaf.cert_chain_pems[0], self.cert_file),
            (leaf.private_key_pem, self.key_file),
        ):
            staged = path.with_suffix(".new")
            blob.write_to_path(str(staged))
            os.replace(staged, path)
        return x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).public_bytes(
            Encoding.DER
        )

    def channel_credentials(self, ca: trustme.CA | None = None, *, client: bool = False
                            ) -> grpc.ChannelCredentials:  # fmt: skip
        """Trusting ca (the server CA), with the client certificate if client."""
        if not client:
            return grpc.ssl_channel_credentials((ca or self.server_ca).cert_pem.bytes())
        return grpc.ssl_channel_credentials(
            (ca or self.server_ca).cert_pem.bytes(),
            self.client_key_file.read_bytes(),
            self.client_cert_file.read_bytes(),
        )

    def ssl_context(self, ca: trustme.CA | None = None, *, client: bool = False) -> ssl.SSLContext:
        """A client context trusting ca (the server CA), with the client certificate if client."""
        context = ssl.create_default_context()
        (ca or self.server_ca).configure_trust(context)
        if client:
            context.load_cert_chain(self.client_cert_file, self.client_key_file)
        return context


def served_certificate(port: int, pki: Pki) -> bytes:
    """The certificate (DER) a new TLS connection to 127.0.0.1:port is shown
    (with the client certificate, should the server ask for one)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test compares what it is shown
    context.set_alpn_protocols(["h2", "http/1.1"])
    context.load_cert_chain(pki.client_cert_file, pki.client_key_file)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with raw, context.wrap_socket(raw) as tls:
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def wait_for(condition: Callable[[], bool], what: str, deadline: float = 30) -> None:
    """Poll condition (each try is a new connection) until true, within deadline seconds."""
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"still not {what} after {deadline} s"
        time.sleep(0.05)  # between attempts only: the condition itself is checked each time
