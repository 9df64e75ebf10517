"""What the client tests share: a TCP proxy in front of a memory gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RunningGateway
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def proxy(memory_gateway: RunningGateway) -> Iterator[TcpProxy]:
    """The memory gateway behind a proxy that can cut its connections."""
    with TcpProxy(memory_gateway.target) as running:
        yield running
