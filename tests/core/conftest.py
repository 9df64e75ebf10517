"""The one door under watch (tests/core/door.py), started for each test that asks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from storagegw.v1 import storage_pb2_grpc
from tests.conftest import run_gateway
from tests.core.door import DATA, Door, RecordingGuard, spy_on_driver
from tests.rpc_calls import put


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    config = tmp_path / "buckets.toml"
    config.write_text(
        'default_bucket = "main"\n'
        '[buckets.main]\nbackend = "memory"\n[buckets.side]\nbackend = "memory"\n'
    )
    guard = RecordingGuard()
    with (
        run_gateway({"GATEWAY_CONFIG": str(config)}, tmp_path, [guard]) as running,
        grpc.insecure_channel(running.target) as channel,
        httpx.Client(timeout=30) as http,
    ):
        calls: list[str] = []
        for bucket in ("main", "side"):
            spy_on_driver(running.backend(bucket), bucket, calls)
        door = Door(running, storage_pb2_grpc.StorageServiceStub(channel), http, guard, calls)
        put(door.stub, "k", DATA)
        door.reset()
        yield door
