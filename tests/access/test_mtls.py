"""Mutual TLS identities from trustme-issued client certificates."""

from __future__ import annotations

import pytest
import trustme

from gateway.access.mtls import certificate_principal
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.identity import Proof
from tests.certs import cn_certificate, spiffe_certificate


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_the_uri_san_is_the_principal(ca: trustme.CA) -> None:
    pem = spiffe_certificate(ca, "spiffe://corp/ns/billing/sa/api", common_name="api")

    principal = certificate_principal(pem)

    assert principal.id == "spiffe://corp/ns/billing/sa/api"
    assert principal.proof is Proof.MTLS


def test_without_uri_san_the_common_name_is_the_principal(ca: trustme.CA) -> None:
    principal = certificate_principal(cn_certificate(ca, "billing-api"))

    assert principal.id == "billing-api"
    assert principal.proof is Proof.MTLS


def test_a_certificate_naming_nobody_is_refused(ca: trustme.CA) -> None:
    pem = cn_certificate(ca, None)

    with pytest.raises(GatewayError) as caught:
        certificate_principal(pem)

    assert caught.value.reason is Reason.CREDENTIALS_INVALID


def test_garbage_is_refused() -> None:
    with pytest.raises(GatewayError) as caught:
        certificate_principal(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")

    assert caught.value.reason is Reason.CREDENTIALS_INVALID


def test_a_certificate_is_read_once_and_its_principal_remembered(ca: trustme.CA) -> None:
    pem = cn_certificate(ca, "cached-api")

    first = certificate_principal(pem)

    assert certificate_principal(pem) is first
    assert certificate_principal(cn_certificate(ca, "other-api")).id == "other-api"


def test_a_refused_certificate_is_refused_every_time(ca: trustme.CA) -> None:
    pem = cn_certificate(ca, None)

    for _ in range(2):
        with pytest.raises(GatewayError):
            certificate_principal(pem)
