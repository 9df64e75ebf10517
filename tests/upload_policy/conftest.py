"""Fixtures of the upload policy's gateway-level tests: a gateway whose
buckets have policies, on each driver of gateways.DRIVERS, and its clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from storagegw import Client
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway, run_gateway
from tests.upload_policy.gateways import DRIVERS, SECRET, Stub, policy_config


@pytest.fixture(params=list(DRIVERS))
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    config = tmp_path / "buckets.toml"
    config.write_text(policy_config(request, request.param, DRIVERS[request.param]))
    env = {"GATEWAY_CONFIG": str(config), "STORAGE_URL_SECRET": SECRET}
    with run_gateway(env, tmp_path / "data") as gateway:
        gateway.backend_name = request.param
        yield gateway


@pytest.fixture
def client(running: RunningGateway) -> Iterator[Client]:
    with Client(running.target, timeout=30) as client:
        yield client


@pytest.fixture
def stub(running: RunningGateway) -> Iterator[Stub]:
    with grpc.insecure_channel(running.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)
