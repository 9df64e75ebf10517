"""The gateway's buckets: name -> backend driver."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from gateway.backends.base import Backend
from gateway.core import calllog
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.keys import validate_bucket


class Buckets:
    """Resolves request bucket names ("" means the default) to drivers."""

    def __init__(self, backends: Mapping[str, Backend], default: str) -> None:
        if default not in backends:
            raise ValueError(f"default bucket {default!r} is not configured")
        self._backends = dict(backends)
        self.default = default

    def resolve(self, name: str) -> tuple[str, Backend]:
        """(bucket name, driver); BUCKET_NOT_FOUND for unknown names."""
        if not name:
            name = self.default
        calllog.resolved(name)
        backend = self._backends.get(name)
        if backend is None:
            validate_bucket(name)
            raise GatewayError(
                Reason.BUCKET_NOT_FOUND, f"bucket {name!r} is not configured", bucket=name
            )
        return name, backend

    def __iter__(self) -> Iterator[tuple[str, Backend]]:
        return iter(self._backends.items())

    async def close(self) -> None:
        for backend in self._backends.values():
            await backend.close()
