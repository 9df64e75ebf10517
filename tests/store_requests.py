"""A StoreObserver that keeps every request a driver sends to its store, for
tests that count or name them (which operations, which HTTP methods)."""

from __future__ import annotations

from gateway.backends.observer import ObservedRequest, StoreRequest


class StoreRequests:
    def __init__(self) -> None:
        self.sent: list[StoreRequest] = []

    def request_started(self, request: StoreRequest) -> ObservedRequest | None:
        self.sent.append(request)
        return None

    def fsynced(self, path: str, started_ns: int, ended_ns: int) -> None:
        pass

    def methods(self) -> list[str]:
        return [request.method for request in self.sent]

    def operations(self) -> list[str]:
        return [request.operation for request in self.sent]
