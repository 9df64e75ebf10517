"""TLS on the gRPC port: real handshakes, mutual TLS, the peer certificate in
the auth context, and a certificate rotated without a restart."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trustme
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.transport.certificates import CertificateFiles
from gateway.transport.grpc_credentials import server_credentials
from gateway.transport.settings import load_transport_settings
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway, run_gateway
from tests.rpc_calls import get, put
from tests.transport.pki import Pki, served_certificate, wait_for


@pytest.fixture
def tls_gateway(pki: Pki, tmp_path: Path) -> Iterator[RunningGateway]:
    with run_gateway({"STORAGE_BACKEND": "memory", **pki.env()}, tmp_path) as running:
        yield running


def health(target: str, credentials: grpc.ChannelCredentials) -> int:
    with grpc.secure_channel(target, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status)


def test_calls_over_tls_with_the_server_ca(tls_gateway: RunningGateway, pki: Pki) -> None:
    with grpc.secure_channel(tls_gateway.target, pki.channel_credentials()) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        put(stub, "tls/hello.txt", b"over TLS")
        assert get(stub, "tls/hello.txt")[1] == b"over TLS"
        signed = stub.SignUrl(pb.SignUrlRequest(key="tls/hello.txt", method=pb.SIGNED_METHOD_GET))
    # Signed URLs name the listener as clients reach it: over https.
    assert signed.url.startswith(f"https://127.0.0.1:{tls_gateway.gateway.http_port}/")


def test_plaintext_and_untrusted_clients_are_refused(tls_gateway: RunningGateway) -> None:
    with grpc.insecure_channel(tls_gateway.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    stranger = grpc.ssl_channel_credentials(trustme.CA().cert_pem.bytes())
    with pytest.raises(grpc.RpcError) as untrusted:
        health(tls_gateway.target, stranger)
    assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_required(pki: Pki, tmp_path: Path) -> None:
    with run_gateway({"STORAGE_BACKEND": "memory", **pki.mtls_env()}, tmp_path) as running:
        assert health(running.target, pki.channel_credentials(client=True)) == 1  # SERVING
        with pytest.raises(grpc.RpcError) as refused:
            health(running.target, pki.channel_credentials())
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # A certificate from another CA is no better than none.
        other = trustme.CA().issue_cert("client.example")
        foreign = grpc.ssl_channel_credentials(
            pki.server_ca.cert_pem.bytes(),
            other.private_key_pem.bytes(),
            other.cert_chain_pems[0].bytes(),
        )
        with pytest.raises(grpc.RpcError):
            health(running.target, foreign)


async def _peer_certificate_server(files: CertificateFiles) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with the gateway's credentials whose one method
    answers with the auth context's x509_pem_cert (what a front reads)."""

    async def whoami(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b"".join(context.auth_context().get("x509_pem_cert", []))

    handler = grpc.method_handlers_generic_handler(
        "test.Peer", {"Whoami": grpc.unary_unary_rpc_method_handler(whoami)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", server_credentials(files))
    await server.start()
    return server, port


async def whoami(pki: Pki) -> bytes:
    """The auth context's x509_pem_cert of a call made with the client certificate."""
    settings = load_transport_settings(pki.mtls_env(), authenticates=True)
    assert settings.tls is not None
    server, port = await _peer_certificate_server(CertificateFiles(settings.tls))
    try:
        credentials = pki.channel_credentials(client=True)
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            return bytes(await channel.unary_unary("/test.Peer/Whoami")(b"", timeout=10))
    finally:
        await server.stop(None)


async def test_the_auth_context_holds_the_client_certificate(pki: Pki) -> None:
    pem = await whoami(pki)
    certificate = x509.load_pem_x509_certificate(pem)
    common_name = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert common_name[0].value == "svc-billing"
    assert pem == pki.client_cert_file.read_bytes()


def test_rotated_certificate_is_served_without_a_restart(
    tls_gateway: RunningGateway, pki: Pki
) -> None:
    port = tls_gateway.gateway.grpc_port
    before = served_certificate(port, pki)
    new_ca = trustme.CA()
    rotated = pki.install_server_cert(new_ca)
    assert rotated != before
    wait_for(lambda: served_certificate(port, pki) == rotated, "serving the new certificate")
    # Clients trusting the new CA get through; those trusting only the old one no longer do.
    assert health(tls_gateway.target, pki.channel_credentials(new_ca)) == 1
    with pytest.raises(grpc.RpcError):
        health(tls_gateway.target, pki.channel_credentials())


def test_a_half_done_rotation_keeps_the_previous_certificate(
    tls_gateway: RunningGateway, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    port = tls_gateway.gateway.grpc_port
    before = served_certificate(port, pki)
    # A new certificate beside the old key: unusable, so the old pair stays.
    pki.server_ca.issue_cert("127.0.0.1").cert_chain_pems[0].write_to_path(str(pki.cert_file))
    with caplog.at_level(logging.WARNING, logger="storagegw"):
        for _ in range(3):
            assert served_certificate(port, pki) == before
    refusals = [r.getMessage() for r in caplog.records if "cannot be used" in r.getMessage()]
    assert len(refusals) == 1, refusals  # once for this state of the files, not per connection
    assert "GATEWAY_TLS_KEY" in refusals[0]
    assert health(tls_gateway.target, pki.channel_credentials()) == 1
