"""What the client tests share: a TCP proxy in front of a memory gateway, a fake
gateway that fails on purpose, and the certificates and servers of the TLS and
token tests."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import trustme

from storagegw.v1 import storage_pb2_grpc
from tests.client.auth_server import Pki, Server, serve
from tests.client.failing_storage import FakeStorage
from tests.conftest import RunningGateway
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def proxy(memory_gateway: RunningGateway) -> Iterator[TcpProxy]:
    """The memory gateway behind a proxy that can cut its connections."""
    with TcpProxy(memory_gateway.target) as running:
        yield running


@pytest.fixture
def fake() -> Iterator[tuple[FakeStorage, str]]:
    """A FakeStorage served on a local port, and its target."""
    servicer = FakeStorage()
    server = grpc.server(ThreadPoolExecutor(max_workers=8))
    storage_pb2_grpc.add_StorageServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("billing.internal", common_name="svc-billing")
    files = Pki(ca, server, client, directory / "ca.pem", directory / "c.pem", directory / "c.key")
    ca.cert_pem.write_to_path(str(files.ca_file))
    files.client_cert_file.write_bytes(b"".join(pem.bytes() for pem in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(files.client_key_file))
    return files


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[Server]:
    yield from serve(pki.server_credentials(mutual=False))


@pytest.fixture
def mtls_server(pki: Pki) -> Iterator[Server]:
    yield from serve(pki.server_credentials(mutual=True))


@pytest.fixture
def plain_server() -> Iterator[Server]:
    yield from serve(None)
