"""TLS on the signed-URL listener: https with the server CA, mutual TLS, and
a certificate rotated without a restart."""

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


def test_mutual_tls_required(pki: Pki, tmp_path: Path) -> None:
    with run_gateway({"STORAGE_BACKEND": "memory", **pki.mtls_env()}, tmp_path) as running:
        url = signed_get(running, pki, "web/private.txt", b"members only")
        assert fetch(url, pki.ssl_context(client=True)).content == b"members only"
        # TLS 1.3 reports a missing client certificate after the handshake: on the request.
        with pytest.raises(httpx.HTTPError):
            fetch(url, pki.ssl_context())


def test_mutual_tls_optional(pki: Pki, tmp_path: Path) -> None:
    env = {"STORAGE_BACKEND": "memory", **pki.mtls_env("optional")}
    with run_gateway(env, tmp_path) as running:
        url = signed_get(running, pki, "web/open.txt", b"anyone")
        assert fetch(url, pki.ssl_context()).content == b"anyone"
        assert fetch(url, pki.ssl_context(client=True)).content == b"anyone"


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
