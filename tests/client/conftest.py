"""What the client tests share: a TCP proxy in front of a memory gateway, and a
fake gateway that fails on purpose."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from storagegw.v1 import storage_pb2_grpc
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
