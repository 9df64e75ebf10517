"""A plaintext gRPC listener that serves grpc.health.v1 and nothing else.

With mutual TLS on the gRPC port every connection must present a client
certificate, so a Kubernetes probe (plaintext, or TLS without a client
certificate) cannot reach the health service there. This second server
answers the same HealthServicer (the same statuses, the same shutdown) on its
own address, with no TLS and no credentials: it carries no data, so it needs
no protection beyond what its address gives. Any other method there is
UNIMPLEMENTED; reflection, when on (GATEWAY_REFLECTION), lists health only and
lets grpcurl call it without a .proto.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.rpc.health import HealthServicer


class HealthListener:
    """start(), then stop(grace): bound in __init__, so a bad address fails early."""

    def __init__(self, listen: str, servicer: HealthServicer, *, reflect: bool) -> None:
        self.server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, self.server)
        if reflect:
            services = (health.SERVICE_NAME, reflection.SERVICE_NAME)
            reflection.enable_server_reflection(services, self.server)
        try:
            self.port = self.server.add_insecure_port(listen)
        except RuntimeError:  # grpcio raises where older versions returned 0
            self.port = 0
        if self.port == 0:
            raise OSError(f"GATEWAY_HEALTH_LISTEN: cannot listen on {listen}")

    async def start(self) -> None:
        await self.server.start()

    async def stop(self, grace: float | None) -> None:
        await self.server.stop(grace)
