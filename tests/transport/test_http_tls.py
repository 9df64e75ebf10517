"""TLS on the signed-URL listener: https with the server CA, no client
certificate asked for under mutual TLS, and a certificate rotated without a
restart."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
import httpx
import pytest
import trustme

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway, run_gateway
from tests.rpc_calls import put
from tests.transport.pki import Pki, served_certificate, wait_for


def signed_get(running: RunningGateway, pki: Pki, key: str, data: bytes) -> str:
    """Store key over gRPC (with the client certificate) and sign a GET for it."""
    credentials = pki.channel_credentials(client=True)
    with grpc.secure_channel(running.target, credentials) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        put(stub, key, data)
        return str(stub.SignUrl(pb.SignUrlRequest(key=key, method=pb.SIGNED_METHOD_GET)).url)


def fetch(url: str, context: ssl.SSLContext) -> httpx.Response:
    with httpx.Client(verify=context, timeout=10) as client:
        return client.get(url)


def test_signed_urls_over_https(pki: Pki, tmp_path: Path) -> None:
    with run_gateway({"STORAGE_BACKEND": "memory", **pki.env()}, tmp_path) as running:
        url = signed_get(running, pki, "web/page.html", b"<p>hello</p>")
        assert url.startswith("https://")
        reply = fetch(url, pki.ssl_context())
        assert reply.status_code == 200
        assert reply.content == b"<p>hello</p>"
        # Plain HTTP to the TLS port gets no answer it could mistake for one.
        with pytest.raises(httpx.HTTPError):
            httpx.get(url.replace("https://", "http://"), timeout=10)
        with pytest.raises(httpx.ConnectError):
            fetch(url, ssl.create_default_context(cadata=trustme.CA().cert_pem.bytes().decode()))


def test_signed_urls_need_no_client_certificate_under_mutual_tls(pki: Pki, tmp_path: Path) -> None:
    with run_gateway({"STORAGE_BACKEND": "memory", **pki.mtls_env()}, tmp_path) as running:
        # SignUrl over gRPC needs the client certificate...
        url = signed_get(running, pki, "web/shared.txt", b"for the link's holder")
        with (
            grpc.secure_channel(running.target, pki.channel_credentials()) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            storage_pb2_grpc.StorageServiceStub(channel).Head(pb.HeadRequest(key="web/shared.txt"))
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE  # no handshake
        # ...the URL's holder needs none.
        assert fetch(url, pki.ssl_context()).content == b"for the link's holder"


def test_rotated_certificate_is_served_without_a_restart(pki: Pki, tmp_path: Path) -> None:
    with run_gateway({"STORAGE_BACKEND": "memory", **pki.env()}, tmp_path) as running:
        url = signed_get(running, pki, "web/rotating.txt", b"still here")
        port = running.gateway.http_port
        before = served_certificate(port, pki)
        new_ca = trustme.CA()
        rotated = pki.install_server_cert(new_ca)
        assert rotated != before
        wait_for(lambda: served_certificate(port, pki) == rotated, "serving the new certificate")
        assert fetch(url, pki.ssl_context(new_ca)).content == b"still here"
        with pytest.raises(httpx.ConnectError):
            fetch(url, pki.ssl_context())


def test_probes_over_tls(pki: Pki, tmp_path: Path) -> None:
    with run_gateway({"STORAGE_BACKEND": "memory", **pki.mtls_env()}, tmp_path) as running:
        base = f"https://127.0.0.1:{running.gateway.http_port}"
        # Under mutual TLS too, a probe needs no client certificate.
        with httpx.Client(base_url=base, verify=pki.ssl_context(), timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").json() == {"status": "ready"}
