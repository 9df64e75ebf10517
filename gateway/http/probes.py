"""/healthz and /readyz on the signed-URL listener, for probes that speak
HTTP (Kubernetes httpGet, load balancers) rather than gRPC health.

Both answer GET and HEAD with no credentials and no signature, and read the
state the gRPC health service already holds (gateway/server.py composes it):
one prober, one truth, so the two never disagree.
- /healthz: 200 while the process serves requests at all.
- /readyz: 200 when every bucket's backend probe passed last time and the
  gateway is not draining; else 503, naming the failing buckets (names only:
  the probe's error messages stay in the log) or saying it is draining.
Bodies are JSON; nothing in them is secret.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

HEALTHZ = "/healthz"
READYZ = "/readyz"


@dataclass(frozen=True, slots=True)
class Readiness:
    draining: bool
    failing_buckets: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.draining and not self.failing_buckets


ReadinessSource = Callable[[], Readiness]

_READINESS: web.AppKey[ReadinessSource] = web.AppKey("readiness")

# Probes need no answer cached anywhere on the way.
_NO_STORE = {"Cache-Control": "no-store"}


def add_routes(app: web.Application, readiness: ReadinessSource) -> None:
    app[_READINESS] = readiness
    app.router.add_get(HEALTHZ, _healthz)  # add_get adds HEAD too
    app.router.add_get(READYZ, _readyz)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"}, headers=_NO_STORE)


async def _readyz(request: web.Request) -> web.Response:
    state = request.app[_READINESS]()
    if state.ready:
        return web.json_response({"status": "ready"}, headers=_NO_STORE)
    body: dict[str, object] = {"status": "draining" if state.draining else "not ready"}
    if not state.draining:
        body["failing_buckets"] = list(state.failing_buckets)
    return web.json_response(body, status=503, headers=_NO_STORE)
