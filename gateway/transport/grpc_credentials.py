"""The gRPC port's TLS: server credentials whose certificate follows the files.

grpcio asks the fetcher for a new configuration at the start of every client
connection (in its own threads, not on the event loop); the fetcher compares
the files' signatures and hands over a new configuration only when they
changed, so a rotated certificate is served from the next connection on,
without a restart. Connections already open keep the certificate they began
with.

With mutual TLS the verified client certificate is in the call's auth context
(`context.auth_context()["x509_pem_cert"]`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import grpc

from gateway.transport.certificates import CertificateFiles, Certificates


def server_credentials(files: CertificateFiles) -> grpc.ServerCredentials:
    """Credentials for add_secure_port, reloading from files."""
    served = files.current

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        nonlocal served
        latest = files.refresh()
        if latest is served:
            return None  # unchanged: gRPC keeps the configuration it has
        served = latest
        return _configuration(latest, files.tls.requires_client_cert)

    return grpc.dynamic_ssl_server_credentials(
        _configuration(served, files.tls.requires_client_cert),
        # grpcio takes None for "unchanged"; its type stubs leave that out.
        cast("Callable[[], grpc.ServerCertificateConfiguration]", fetch),
        require_client_authentication=files.tls.requires_client_cert,
    )


def _configuration(
    certificates: Certificates, verify_clients: bool
) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(certificates.key, certificates.cert_chain)],
        root_certificates=certificates.client_ca if verify_clients else None,
    )
