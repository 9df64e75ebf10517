"""The signed-URL listener's connections: how many, how long idle, and how
they end at shutdown.

- A connection with no request in progress is closed after keepalive_timeout
  (aiohttp's own default is an hour); that also bounds a client that opens a
  connection and sends no complete request line and headers.
- Past max_connections open connections, a new one is closed at once without
  an answer (nothing is read from it): a flood of idle connections cannot use
  up the process's file descriptors.
- stop(grace): no new connections; idle ones close now; requests in flight get
  grace seconds to finish, then their handlers are cancelled (an upload in
  progress stores nothing) and their connections cut.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.http.server import PathOnlyAccessLogger, access_log

log = logging.getLogger(__name__)

# How long cancelled handlers get to unwind (abort their upload, close their
# reader) once the grace is over.
CUT_WAIT = 2.0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    keepalive_timeout: float = 15.0
    max_connections: int = 512


class HttpListener:
    """One aiohttp application served on host:port; start() then stop()."""

    def __init__(self, runner: web.AppRunner, server: asyncio.Server, port: int) -> None:
        self._runner = runner
        self._server = server
        self.port = port

    @classmethod
    async def start(
        cls,
        app: web.Application,
        host: str,
        port: int,
        limits: ConnectionLimits,
        tls: ssl.SSLContext | None = None,
        *,
        reuse_port: bool = False,
    ) -> HttpListener:
        """Serve app on host:port (0: any free port), over TLS with tls; OSError
        when it cannot listen. reuse_port: share the port with the other
        worker processes (SO_REUSEPORT: the kernel spreads connections)."""
        runner = web.AppRunner(
            app,
            access_log=access_log,
            access_log_class=PathOnlyAccessLogger,
            handle_signals=False,
            keepalive_timeout=limits.keepalive_timeout,
            # A refused upload's unread body is not drained: the connection closes.
            lingering_time=0,
            # A handler whose client is gone is cancelled (its upload aborted).
            handler_cancellation=True,
            shutdown_timeout=CUT_WAIT,
        )
        await runner.setup()
        http = runner.server
        assert http is not None
        _cap_connections(http, limits.max_connections)
        try:
            server = await asyncio.get_running_loop().create_server(
                http, host, port, ssl=tls, reuse_port=reuse_port or None
            )
        except BaseException:
            await runner.cleanup()
            raise
        bound = int(server.sockets[0].getsockname()[1])
        return cls(runner, server, bound)

    async def stop(self, grace: float) -> None:
        """Finish in-flight requests within grace seconds, then cut them."""
        self._server.close()
        http = self._runner.server
        if http is not None:
            http.pre_shutdown()  # idle connections close now, busy ones after their answer
            try:
                async with asyncio.timeout(grace):
                    await http.shutdown(grace)
            except TimeoutError:
                log.warning(
                    "signed URLs: cutting %d connection(s) still busy after the %.1f s grace",
                    len(http.connections),
                    grace,
                )
            for connection in http.connections:
                if connection.transport is not None:
                    # With handler_cancellation, losing the connection cancels its handler.
                    connection.transport.abort()
        try:
            async with asyncio.timeout(CUT_WAIT * 2):
                await self._runner.cleanup()
        except TimeoutError:
            log.warning("signed URLs: handlers still unwinding at exit")


def _cap_connections(http: web.Server, max_connections: int) -> None:
    """Close connections past max_connections as they are made. Checked where
    aiohttp registers a connection, so the count is exact however many
    connections arrive at once."""
    register = http.connection_made
    refused = 0

    def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
        nonlocal refused
        if len(http.connections) >= max_connections:
            refused += 1
            if refused % 1000 == 1:  # a flood must not flood the log too
                log.warning(
                    "signed URLs: %d connections open (GATEWAY_HTTP_MAX_CONNECTIONS): "
                    "closing new ones (%d so far)",
                    max_connections,
                    refused,
                )
            transport.close()
            return
        register(handler, transport)

    http.connection_made = connection_made  # type: ignore[method-assign]
