"""What the HTTP listener tests start: env, the signed-URL listener of
tests/http/signed_env.py on each storage backend in turn; gw, a real gateway with the
short idle timeout of tests/http/limit_gateway.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.conftest import RunningGateway
from tests.http.limit_gateway import IDLE
from tests.http.signed_env import Env, running


@pytest.fixture(params=["memory", "local"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with running(request.param, tmp_path) as environment:
        yield environment


@pytest.fixture
def gw(gateway_factory: Callable[..., RunningGateway]) -> RunningGateway:
    return gateway_factory(STORAGE_BACKEND="memory", GATEWAY_STREAM_IDLE_TIMEOUT=IDLE)
