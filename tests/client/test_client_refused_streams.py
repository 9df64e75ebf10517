"""A client that keeps as many calls in flight on one connection as the
gateway's per-connection limit allows (GATEWAY_MAX_STREAMS_PER_CONNECTION)
still sees every call succeed.

The gateway's gRPC server counts a stream it has answered until its process
has freed it, so under load it refuses some new streams (HTTP/2
REFUSED_STREAM, seen as UNAVAILABLE) although the client is within the limit
it was told. The gateway never saw those calls; the bundled client has gRPC
retry them (storagegw._common.RETRY_SERVICE_CONFIG). Without that policy the
calls below fail by the dozen on this machine.
"""

from __future__ import annotations

import asyncio
import itertools
import os

import pytest

from storagegw import AsyncClient, Client, RetryPolicy, Unavailable

# As many calls in flight as the connection may carry, on a limit small
# enough that the gateway's lag in freeing answered streams matters.
LIMIT = 8
CALLS = 1500
OBJECTS = 16


async def _run(target: str, data: dict[str, bytes]) -> tuple[int, int]:
    """CALLS small Gets, then CALLS small Puts, LIMIT at a time on one channel;
    (Gets that returned the right bytes, Puts the gateway stored)."""
    keys = sorted(data)
    got_right = stored = 0
    async with AsyncClient(target, timeout=60) as client:
        numbers = itertools.count()

        async def getter() -> None:
            nonlocal got_right
            while (n := next(numbers)) < CALLS:
                key = keys[n % len(keys)]
                got = await client.get_bytes(key)
                got_right += got == data[key]

        await asyncio.gather(*(getter() for _ in range(LIMIT)))
        numbers = itertools.count()

        async def putter() -> None:
            nonlocal stored
            while (n := next(numbers)) < CALLS:
                info = await client.put_bytes(f"put/{n:05d}", n.to_bytes(4, "big") * 1024)
                stored += info.size == 4096  # nothing awaited between read and write

        await asyncio.gather(*(putter() for _ in range(LIMIT)))
    return got_right, stored


def test_calls_up_to_the_per_connection_limit_all_succeed(gateway_factory) -> None:
    running = gateway_factory(
        STORAGE_BACKEND="memory", GATEWAY_MAX_STREAMS_PER_CONNECTION=str(LIMIT)
    )
    data = {f"get/{i:02d}": os.urandom(4096) for i in range(OBJECTS)}
    with Client(running.target, timeout=30) as client:
        for key, value in data.items():
            client.put_bytes(key, value)

    assert asyncio.run(_run(running.target, data)) == (CALLS, CALLS)

    with Client(running.target, timeout=30) as client:
        listed = [info.key for info in client.list(prefix="put/")]
        assert len(listed) == CALLS
        assert client.get_bytes("put/01234") == (1234).to_bytes(4, "big") * 1024


def test_a_client_without_retries_sees_a_refused_call_as_unavailable(gateway_factory) -> None:
    """RetryPolicy.no_retry() turns gRPC's retry off too: the refusal reaches
    the caller as Unavailable (the gateway never saw the call: safe to retry)."""
    running = gateway_factory(
        STORAGE_BACKEND="memory", GATEWAY_MAX_STREAMS_PER_CONNECTION=str(LIMIT)
    )
    with Client(running.target, timeout=30) as client:
        client.put_bytes("k", b"v" * 4096)

    async def until_refused() -> None:
        async with AsyncClient(running.target, timeout=60, retry=RetryPolicy.no_retry()) as client:
            numbers = itertools.count()

            async def getter() -> None:
                # Until one call is refused (the others stop with it), or far
                # more calls than the refusal ever took here.
                while next(numbers) < 100 * CALLS:
                    await client.get_bytes("k")

            await asyncio.gather(*(getter() for _ in range(LIMIT)))

    with pytest.raises(Unavailable, match="RST_STREAM"):
        asyncio.run(until_refused())
