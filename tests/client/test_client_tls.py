"""TLS and mutual TLS from the clients, against a server over a real TLS socket
that says what it saw of each call (tests/client/auth_server.py)."""

from __future__ import annotations

import pytest
import trustme

from storagegw import AsyncClient, Client, TlsConfig, Unavailable
from tests.client.auth_server import Pki, Server


def test_tls_checks_the_gateway_and_carries_the_token(tls_server: Server, pki: Pki) -> None:
    tls = TlsConfig(ca=str(pki.ca_file))
    with Client(tls_server.target, tls=tls, token="tok-1", timeout=30) as client:
        seen = client.head("k").metadata
    assert seen["transport"] == "ssl"
    assert seen["authorization"] == "Bearer tok-1"


def test_a_gateway_the_roots_do_not_vouch_for_is_refused(tls_server: Server) -> None:
    stranger = trustme.CA()
    tls = TlsConfig(ca=stranger.cert_pem.bytes())
    with Client(tls_server.target, tls=tls, timeout=30) as client, pytest.raises(Unavailable):
        client.head("k")
    assert tls_server.doorkeeper.seen == []


def test_mutual_tls_presents_the_client_certificate(mtls_server: Server, pki: Pki) -> None:
    with Client(mtls_server.target, tls=pki.client_tls(), timeout=30) as client:
        seen = client.head("k").metadata
    assert seen["peer"] == "svc-billing"
    assert seen["authorization"] == ""


def test_mutual_tls_without_a_certificate_is_refused(mtls_server: Server, pki: Pki) -> None:
    tls = TlsConfig(ca=pki.ca_file)
    with Client(mtls_server.target, tls=tls, timeout=30) as client, pytest.raises(Unavailable):
        client.head("k")
    assert mtls_server.doorkeeper.seen == []


async def test_async_client_over_mutual_tls(mtls_server: Server, pki: Pki) -> None:
    tls = TlsConfig(ca=pki.ca_file, cert=pki.client_cert_file, key=pki.client_key_file)
    async with AsyncClient(mtls_server.target, tls=tls, token="tok-a", timeout=30) as client:
        seen = (await client.head("k")).metadata
    assert (seen["peer"], seen["authorization"]) == ("svc-billing", "Bearer tok-a")


def test_tls_config_needs_both_cert_and_key(pki: Pki) -> None:
    with pytest.raises(ValueError, match="both cert and key"):
        TlsConfig(cert=pki.client_cert_file)


def test_tls_config_repr_hides_key_bytes(pki: Pki) -> None:
    tls = pki.client_tls()
    text = repr(tls)
    assert pki.client.private_key_pem.bytes().decode() not in text
    assert "key=<hidden>" in text
    assert str(pki.ca_file) in text
