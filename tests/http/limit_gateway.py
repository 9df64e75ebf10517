"""A real gateway (memory backend) for tests of the signed-URL listener under careless
and hostile clients: its short idle timeout, the URLs it signs, and the objects put
into and looked up in it without going over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway.core.ingest import Expected, Incoming, store
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import WriteOptions
from tests.conftest import RunningGateway

IDLE = "0.5"  # GATEWAY_STREAM_IDLE_TIMEOUT in these tests, seconds


def sign(gw: RunningGateway, key: str, method: str, **options: Any) -> str:
    return str(gw.gateway.signer.sign("default", key, method, 600, **options).url)


def put_object(gw: RunningGateway, key: str, data: bytes, content_type: str = "") -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    gw.run(
        store(
            gw.backend(),
            key,
            WriteOptions(content_type=content_type),
            Incoming(chunks(), Expected()),
        )
    )


def stored(gw: RunningGateway, key: str) -> bool:
    async def exists() -> bool:
        try:
            await gw.backend().head(key)
        except GatewayError as error:
            if error.reason == Reason.OBJECT_NOT_FOUND:
                return False
            raise
        return True

    return bool(gw.run(exists()))
