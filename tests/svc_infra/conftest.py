"""Real gateways (memory and local backends) and the svc-infra adapter on them.

svc-infra's own storage tests (tests/unit/storage in its repository) are not
in its sdist or wheel, and each builds svc-infra's MemoryBackend or
LocalBackend itself, so they cannot be pointed at another backend without
copying them. The modules here run the same cases against
GatewayStorageBackend instead, each naming the test of theirs it mirrors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from storagegw.svc_infra import GatewayStorageBackend
from tests.conftest import RunningGateway

# The gateway's drivers the svc-infra cases run on (svc-infra's suite has the
# same two: its memory and local backends).
GATEWAY_BACKENDS = ("memory", "local")


@pytest.fixture(params=GATEWAY_BACKENDS)
def svc_gateway(
    request: pytest.FixtureRequest, gateway_factory: Callable[..., RunningGateway]
) -> RunningGateway:
    return gateway_factory(STORAGE_BACKEND=request.param)


@pytest.fixture
async def backend(svc_gateway: RunningGateway) -> AsyncIterator[GatewayStorageBackend]:
    async with GatewayStorageBackend(svc_gateway.target, timeout=60) as storage:
        yield storage


async def fetch(url: str) -> httpx.Response:
    """A plain HTTP GET of a URL, as a browser given it would send."""
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(url)
