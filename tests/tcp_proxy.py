"""A TCP proxy in threads that forwards bytes and can cut every connection.

    with TcpProxy("127.0.0.1:50051") as proxy:
        proxy.cut_after(upstream=5 * MiB)   # once 5 MiB more went client -> gateway
        ... use proxy.target ...

A cut closes every open connection (both sides) as a broken network would;
new connections are forwarded again at once. refuse() cuts and also stops
listening, so that new connections are refused as by a server that went
away, until restore() listens again on the same port. Byte counters per
direction show how much was really sent.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

_BUFFER = 64 * 1024


class TcpProxy:
    def __init__(self, upstream_target: str) -> None:
        host, _, port = upstream_target.rpartition(":")
        self._upstream = (host, int(port))
        listener = socket.create_server(("127.0.0.1", 0))
        self._listener: socket.socket | None = listener
        self.port = int(listener.getsockname()[1])
        self.target = f"127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self.upstream_bytes = 0  # client -> gateway
        self.downstream_bytes = 0  # gateway -> client
        self.cuts = 0
        self._cut_at: dict[str, int] = {}  # direction -> counter value to cut at
        self.cut_done = threading.Event()
        self._then: Callable[[], object] | None = None
        # (upstream, downstream, cuts left) of cut_after's further cuts.
        self._again: tuple[int | None, int | None, int] = (None, None, 0)
        self._thread = self._serve(listener)

    def _serve(self, listener: socket.socket) -> threading.Thread:
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        return thread

    def cut_after(
        self,
        *,
        upstream: int | None = None,
        downstream: int | None = None,
        then: Callable[[], object] | None = None,
        times: int = 1,
    ) -> None:
        """Cut all connections once this many more bytes went that way; then,
        if given, runs at the first cut before the proxy passes any more
        bytes (so before a client can reconnect through it). times: cut
        again each time as many more bytes went, that many cuts in all."""
        with self._lock:
            self.cut_done.clear()
            self._then = then
            self._again = (upstream, downstream, times - 1)
            self._arm(upstream, downstream)

    def _arm(self, upstream: int | None, downstream: int | None) -> None:
        if upstream is not None:
            self._cut_at["up"] = self.upstream_bytes + upstream
        if downstream is not None:
            self._cut_at["down"] = self.downstream_bytes + downstream

    def cut(self) -> None:
        with self._lock:
            self._cut_locked()

    def refuse(self) -> None:
        """Cut every connection and stop listening: connecting is refused, as
        to a server that is down, until restore()."""
        with self._lock:
            listener, self._listener = self._listener, None
            self._cut_locked()
        if listener is not None:
            self._stop_listening(listener)

    def restore(self) -> None:
        """After refuse(): listen again on the same port."""
        with self._lock:
            if self._listener is not None or self._closed:
                raise RuntimeError("restore() is for a proxy that refuse() stopped")
            listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: same port
            self._listener = listener
        self._thread = self._serve(listener)

    def _stop_listening(self, listener: socket.socket) -> None:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        listener.close()
        self._thread.join(10)

    def _cut_locked(self) -> None:
        self._cut_at.clear()
        self.cuts += 1
        upstream, downstream, left = self._again
        if left > 0:
            self._again = (upstream, downstream, left - 1)
            self._arm(upstream, downstream)
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._sockets.clear()
        then, self._then = self._then, None
        if then is not None:
            then()
        self.cut_done.set()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._upstream)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:  # refused or closed meanwhile
                    client.close()
                    server.close()
                    return
                self._sockets.update((client, server))
            pair = {"open": 2}
            for source, dest, direction in ((client, server, "up"), (server, client, "down")):
                threading.Thread(
                    target=self._pump, args=(source, dest, direction, pair), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, dest: socket.socket, direction: str, pair: dict[str, int]
    ) -> None:
        try:
            while True:
                try:
                    data = source.recv(_BUFFER)
                except OSError:
                    break
                if not data:
                    break
                with self._lock:
                    if source not in self._sockets:
                        break  # cut: drop what was in flight
                    if direction == "up":
                        self.upstream_bytes += len(data)
                        counter = self.upstream_bytes
                    else:
                        self.downstream_bytes += len(data)
                        counter = self.downstream_bytes
                    limit = self._cut_at.get(direction)
                    if limit is not None and counter >= limit:
                        self._cut_locked()
                        break
                try:
                    dest.sendall(data)
                except OSError:
                    break
        finally:
            with contextlib.suppress(OSError):
                dest.shutdown(socket.SHUT_WR)
            with self._lock:
                pair["open"] -= 1
                if pair["open"] == 0:
                    self._sockets.discard(source)
                    self._sockets.discard(dest)
                    source.close()
                    dest.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            listener, self._listener = self._listener, None
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if listener is not None:
            self._stop_listening(listener)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
