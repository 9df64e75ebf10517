"""GATEWAY_HEALTH_LISTEN: health in the clear for probes while the gRPC port
requires mutual TLS, and nothing else there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.config import ConfigError
from gateway.config import load as load_config
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway, run_gateway
from tests.transport.pki import Pki
from tests.transport.test_grpcurl_tls import HEALTH, grpcurl

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def mtls_gateway(pki: Pki, tmp_path: Path) -> Iterator[RunningGateway]:
    env = {"STORAGE_BACKEND": "memory", "GATEWAY_HEALTH_LISTEN": "127.0.0.1:0", **pki.mtls_env()}
    with run_gateway(env, tmp_path) as running:
        yield running


def health_target(running: RunningGateway) -> str:
    listener = running.gateway.health_listener
    assert listener is not None
    return f"127.0.0.1:{listener.port}"


def check(target: str, service: str = "") -> int:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        return int(stub.Check(request, timeout=10).status)


def test_a_plaintext_probe_sees_health_while_the_port_requires_mtls(
    mtls_gateway: RunningGateway,
) -> None:
    target = health_target(mtls_gateway)
    assert check(target) == SERVING
    assert check(target, "storagegw.v1.StorageService") == SERVING
    assert check(target, "storagegw.v1.StorageService/default") == SERVING
    # The same probe on the gRPC port gets no further than the handshake.
    with pytest.raises(grpc.RpcError) as refused:
        check(mtls_gateway.target)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_health_listener_serves_nothing_else(mtls_gateway: RunningGateway) -> None:
    with grpc.insecure_channel(health_target(mtls_gateway)) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Head(pb.HeadRequest(key="anything"), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_grpcurl_probe_on_the_health_listener(mtls_gateway: RunningGateway, pki: Pki) -> None:
    answer = grpcurl("-plaintext", health_target(mtls_gateway), HEALTH)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout) == {"status": "SERVING"}
    # Reflection there describes health alone.
    listed = grpcurl("-plaintext", health_target(mtls_gateway), "list")
    assert "storagegw.v1.StorageService" not in listed.stdout.split()
    assert "grpc.health.v1.Health" in listed.stdout.split()
    assert grpcurl("-plaintext", mtls_gateway.target, HEALTH).returncode != 0
    assert grpcurl("-cacert", str(pki.ca_file), mtls_gateway.target, HEALTH).returncode != 0


def test_the_listener_follows_the_gateways_shutdown(mtls_gateway: RunningGateway) -> None:
    target = health_target(mtls_gateway)
    mtls_gateway.run(mtls_gateway.gateway.health.enter_graceful_shutdown())
    assert check(target) == NOT_SERVING


def test_off_by_default(pki: Pki, tmp_path: Path) -> None:
    with run_gateway({"STORAGE_BACKEND": "memory", **pki.mtls_env()}, tmp_path) as running:
        assert running.gateway.health_listener is None


def test_a_malformed_address_names_the_setting(tmp_path: Path) -> None:
    env = {"STORAGE_BACKEND": "memory", "STORAGE_BASE_PATH": str(tmp_path)}
    with pytest.raises(ConfigError, match="GATEWAY_HEALTH_LISTEN"):
        load_config({**env, "GATEWAY_HEALTH_LISTEN": "8081"})
