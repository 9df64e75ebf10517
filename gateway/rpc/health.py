"""grpc.health.v1 with shutdown-aware Watch streams.

Like grpcio-health-checking's servicer, but once shutdown is announced every
Watch stream sends NOT_SERVING and then ends, so health watchers (load
balancers, sidecars) never hold a stopping gateway for its whole grace period.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc.aio import ServicerContext
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthServicer(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self._status: dict[str, int] = {"": SERVING}
        self._changed = asyncio.Condition()
        self._shutting_down = False

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def status(self, service: str) -> int | None:
        """A service's current status; None for one never set."""
        return self._status.get(service)

    async def set(self, service: str, status: int) -> None:
        """Set a service's status; ignored once shutdown has been announced."""
        if self._shutting_down:
            return
        async with self._changed:
            self._status[service] = status
            self._changed.notify_all()

    async def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING for good; Watch streams end after saying so."""
        async with self._changed:
            self._shutting_down = True
            for service in self._status:
                self._status[service] = NOT_SERVING
            self._changed.notify_all()

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: ServicerContext[Any, Any]
    ) -> None:
        sent: list[int] = []  # the last status written, once there is one

        def changed() -> bool:
            return [self._status.get(request.service, SERVICE_UNKNOWN)] != sent

        while True:
            async with self._changed:
                await self._changed.wait_for(changed)
                status = self._status.get(request.service, SERVICE_UNKNOWN)
                ending = self._shutting_down
            await context.write(health_pb2.HealthCheckResponse(status=status))
            sent[:] = [status]
            if ending:
                return
