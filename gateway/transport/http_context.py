"""The signed-URL listener's TLS: one ssl.SSLContext for the asyncio server
whose certificate follows the files.

An asyncio server keeps the context it was started with, so the reloaded
certificate is put in at each handshake instead: the context's SNI callback
(called for every ClientHello, with or without a server name) switches the
connection to the latest reading's context. The files are looked at from a
worker thread, at most once per CHECK_INTERVAL and only when connections
arrive, so nothing on the event loop waits for the disk and an idle gateway
does nothing; the connection that sets a check off is served the certificate
already loaded, the following ones the new one.
"""

from __future__ import annotations

import math
import ssl
import threading
import time

from gateway.transport.certificates import CertificateFiles

CHECK_INTERVAL = 1.0  # seconds


class ReloadingContext:
    """`context` goes to the server; it serves the files' latest good reading."""

    def __init__(self, files: CertificateFiles) -> None:
        self._files = files
        self.context = files.current.context
        self.context.sni_callback = self._on_client_hello
        self._checked_at = -math.inf
        self._checking = threading.Lock()

    def _on_client_hello(
        self,
        connection: ssl.SSLObject | ssl.SSLSocket,
        server_name: str | None,
        base: ssl.SSLContext,
    ) -> None:
        now = time.monotonic()
        if now - self._checked_at >= CHECK_INTERVAL and self._checking.acquire(blocking=False):
            self._checked_at = now
            threading.Thread(target=self._check, name="tls-reload", daemon=True).start()
        latest = self._files.current.context
        if latest is not base:
            connection.context = latest

    def _check(self) -> None:
        try:
            self._files.refresh()
        finally:
            self._checking.release()
