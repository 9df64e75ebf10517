"""What the scanning tests share: a client on the module's gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storagegw import Client
from tests.conftest import RunningGateway


@pytest.fixture
def client(running: RunningGateway) -> Iterator[Client]:
    """A client on the module's `running` gateway, with time for 64 MiB scans."""
    with Client(running.target, timeout=120) as client:
        yield client
