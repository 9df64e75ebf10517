"""A Put the gateway refuses at its first message reaches the async client
as the gateway's own status, never as INTERNAL.

The gateway refuses a Put to a bucket it does not have on the spec, the
first message, while the client still has data to write: the client's next
write waits for flow-control credit the gateway never gives, and fails when
the call ends. grpc.aio reports such a write as INTERNAL "Internal error
from Core" and, when it handles the failed write after the call's status,
overwrites that status with it (grpc/grpc#36066). Before the client raced
its writes against the call's end (storagegw._aio_put), a fifth to a half
of these Puts came back as Internal, in every run.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import pytest

from storagegw import AsyncClient, errors
from tests.conftest import RunningGateway

PUTS = 200
AT_ONCE = 8
# The spec, one full data message and the last one: a Put that streams.
SIZE = 1024 * 1024


async def _refused_puts(target: str, source: bytes | Path) -> Counter[str]:
    """PUTS Puts of `source` to a bucket the gateway does not have, AT_ONCE
    at a time; what each raised (class and reason)."""
    raised: Counter[str] = Counter()
    async with AsyncClient(target, timeout=60) as client:
        remaining = iter(range(PUTS))

        async def putter() -> None:
            for n in remaining:
                try:
                    await client.put_file(f"k{n}", source, bucket="missing")
                except errors.StorageError as error:
                    raised[f"{type(error).__name__} {error.reason}"] += 1
                else:
                    raised["stored"] += 1

        await asyncio.gather(*(putter() for _ in range(AT_ONCE)))
    return raised


@pytest.mark.parametrize("source", ["bytes", "file"])
async def test_a_put_refused_at_its_spec_raises_the_gateways_error(
    memory_gateway: RunningGateway, tmp_path: Path, source: str
) -> None:
    data = os.urandom(SIZE)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    raised = await _refused_puts(memory_gateway.target, data if source == "bytes" else path)
    assert raised == {"BucketNotFound BUCKET_NOT_FOUND": PUTS}
