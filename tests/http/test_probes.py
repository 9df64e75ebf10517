"""/healthz and /readyz on the signed-URL listener: no credentials, no
signature, and the same state as the gRPC health service (the backend probe,
draining)."""

from __future__ import annotations

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import RunningGateway

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def grpc_health(running: RunningGateway) -> int:
    with grpc.insecure_channel(running.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status)


def probe(running: RunningGateway, path: str, method: str = "GET") -> httpx.Response:
    return httpx.request(method, running.http_url + path, timeout=10)


def test_alive_and_ready_with_the_backend_up(local_gateway: RunningGateway) -> None:
    alive = probe(local_gateway, "/healthz")
    ready = probe(local_gateway, "/readyz")
    assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert ready.headers["Cache-Control"] == "no-store"
    assert probe(local_gateway, "/readyz", "HEAD").status_code == 200
    assert grpc_health(local_gateway) == SERVING


def test_not_ready_while_a_backend_probe_fails_and_ready_again_after(
    local_gateway: RunningGateway,
) -> None:
    objects = local_gateway.data_dir / "default" / "objects"
    objects.rename(objects.with_name("moved"))
    local_gateway.run(local_gateway.gateway._probe_all())
    ready = probe(local_gateway, "/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "not ready", "failing_buckets": ["default"]}
    assert str(local_gateway.data_dir) not in ready.text  # the probe's error stays in the log
    assert grpc_health(local_gateway) == NOT_SERVING
    assert probe(local_gateway, "/healthz").status_code == 200  # alive all the same

    objects.with_name("moved").rename(objects)
    local_gateway.run(local_gateway.gateway._probe_all())
    assert probe(local_gateway, "/readyz").status_code == 200
    assert grpc_health(local_gateway) == SERVING


def test_draining_is_not_ready_but_alive(memory_gateway: RunningGateway) -> None:
    with httpx.Client(base_url=memory_gateway.http_url, timeout=10) as client:
        assert client.get("/readyz").status_code == 200
        memory_gateway.run(memory_gateway.gateway.health.enter_graceful_shutdown())
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
        assert client.get("/healthz").status_code == 200
    assert grpc_health(memory_gateway) == NOT_SERVING


def test_probes_take_no_other_method_and_signed_routes_stay_signed(
    memory_gateway: RunningGateway,
) -> None:
    assert probe(memory_gateway, "/readyz", "POST").status_code == 405
    assert probe(memory_gateway, "/healthz", "PUT").status_code == 405
    # A signed route named like a probe is still a signed route: no signature, no entry.
    unsigned = probe(memory_gateway, "/v1/b/default/o/readyz")
    assert unsigned.status_code == 403
