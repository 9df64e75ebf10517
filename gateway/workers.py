"""GATEWAY_WORKERS=N: N processes serving one gateway's ports.

One Python process runs one event loop on one core; workers use more. The
supervisor (this module's `supervise`, the process `python -m gateway`
starts) serves nothing itself. It reserves the gRPC, signed-URL and health
ports: it binds a socket with SO_REUSEPORT to each (port 0 becomes a real
port here, so that every worker names the same one) and keeps it, unlistening,
until it exits, so that no other program takes a port between two workers'
starts. Then it starts N workers, each `python -m gateway --worker I:FD`, a
fresh interpreter (no fork of a process that holds gRPC's threads), with the
same settings but those resolved addresses. Each worker is a whole gateway
(gateway/server.py) whose gRPC server and signed-URL listener bind their port
with SO_REUSEPORT too: the kernel spreads new connections between them, and
a connection stays with the worker that accepted it.

Per worker: the stream and connection limits (GATEWAY_MAX_STREAMS,
GATEWAY_MAX_BUFFERED_BYTES, GATEWAY_HTTP_MAX_CONNECTIONS...) and the metrics
listener, which worker I serves on GATEWAY_METRICS_LISTEN's port plus I
(port 0: a free port of its own), each an instance to scrape; OTLP exports
carry the resource attribute storagegw.worker=I. The first worker alone runs
the stale-upload sweep. Each log line names its worker and pid.

Supervision, as gunicorn's arbiter and uvicorn's supervisor do it: a worker
that dies once serving is replaced (one crash should not leave the machine's
other cores idle until someone restarts the service), while a worker that
fails before it serves (a port it cannot bind, a bad setting) stops them all
and the supervisor exits non-zero, as retrying a start that cannot succeed
would only loop. SIGTERM and SIGINT are passed on to every worker, which
drains (GATEWAY_SHUTDOWN_GRACE) and exits; the supervisor exits 0 when all of
them did. A worker tells it is serving by writing to the pipe FD, and stops
gracefully when its stdin, the supervisor's pipe, reaches its end: workers do
not outlive a supervisor killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.core.collector import settle_heap

log = logging.getLogger("storagegw")

WORKER_FLAG = "--worker"


class WorkerFailed(Exception):
    """A worker ended before it was serving; exit_code is the supervisor's."""

    def __init__(self, index: int, exit_code: int) -> None:
        super().__init__(f"worker {index} stopped before serving (exit status {exit_code})")
        self.exit_code = exit_code if exit_code > 0 else 1


def reserve(setting: str, address: str) -> tuple[str, socket.socket]:
    """address with its port resolved, and the socket holding it (bound with
    SO_REUSEPORT, not listening). OSError naming the setting when it is taken."""
    host, _, port = address.rpartition(":")
    infos = socket.getaddrinfo(
        host.strip("[]"), int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    family, kind, proto, _, where = infos[0]
    try:
        # First without SO_REUSEPORT: a port another process serves, even
        # sharing it the same way, is taken; port 0 gets a port nobody uses.
        with socket.socket(family, kind, proto) as probe:
            probe.bind(where)
            bound = int(probe.getsockname()[1])
        held = socket.socket(family, kind, proto)
        try:
            held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            held.bind((where[0], bound, *where[2:]))
        except OSError:
            held.close()
            raise
    except OSError as error:
        raise OSError(f"{setting}: cannot listen on {address}: {error.strerror or error}") from None
    return f"{host}:{bound}", held


def worker_env(env: Mapping[str, str], index: int, listens: Mapping[str, str]) -> dict[str, str]:
    """The environment of worker index: the supervisor's, with the reserved
    addresses, its own metrics port and its OTLP resource attribute."""
    own = {**env, **listens}
    metrics = env.get("GATEWAY_METRICS_LISTEN")
    if metrics:
        host, _, port = metrics.rpartition(":")
        if port.isdigit() and int(port):
            own["GATEWAY_METRICS_LISTEN"] = f"{host}:{int(port) + index}"
    attributes = env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    own["OTEL_RESOURCE_ATTRIBUTES"] = ",".join(
        part for part in (attributes, f"storagegw.worker={index}") if part
    )
    return own


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    exited: asyncio.Task[int] = field(init=False)

    def __post_init__(self) -> None:
        self.exited = asyncio.ensure_future(self.process.wait())


class Supervisor:
    """Starts and watches the workers; see the module docstring."""

    def __init__(self, env: Mapping[str, str], count: int, listens: Mapping[str, str]) -> None:
        """listens: {setting: address} of the listeners to share ("": none)."""
        self._env = env
        self._count = count
        self._listens = listens
        self._workers: dict[int, _Worker] = {}
        self._signals: list[int] = []
        self._wake = asyncio.Event()

    def _on_signal(self, sig: int) -> None:
        if not self._signals:
            log.info("received %s: stopping %d workers", signal.Signals(sig).name, self._count)
        self._signals.append(sig)
        self._wake.set()
        for worker in self._workers.values():
            if worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(sig)

    async def _start(self, index: int, env: Mapping[str, str]) -> _Worker:
        """Worker index, once it serves (WorkerFailed if it ends first)."""
        ready_read, ready_write = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway",
                WORKER_FLAG,
                f"{index}:{ready_write}",
                env=dict(env),
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(ready_write,),
                # Its own session: a terminal's Ctrl-C reaches the supervisor,
                # which passes it on, not every worker twice.
                start_new_session=True,
            )
        finally:
            os.close(ready_write)
        worker = self._workers[index] = _Worker(index, process)
        if self._signals:  # a signal came while it was being spawned
            process.send_signal(self._signals[-1])
        try:
            # b"" (end of pipe): the worker ended, or closed it, without serving.
            said = await asyncio.to_thread(os.read, ready_read, 64)
        finally:
            os.close(ready_read)
        if not said:
            code = await worker.exited
            if not self._signals:
                raise WorkerFailed(index, code)
        return worker

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        listens: dict[str, str] = {}
        held: list[socket.socket] = []
        try:
            for setting, address in self._listens.items():
                if address:
                    listens[setting], reserved = reserve(setting, address)
                    held.append(reserved)
            envs = [worker_env(self._env, i, listens) for i in range(self._count)]
            await asyncio.gather(*(self._start(i, envs[i]) for i in range(self._count)))
            if not self._signals:
                log.info(
                    "%d workers serving gRPC on %s and signed URLs on %s (pids %s)",
                    self._count,
                    listens["GATEWAY_LISTEN"],
                    listens["GATEWAY_HTTP_LISTEN"],
                    ", ".join(str(w.process.pid) for w in self._workers.values()),
                )
            await self._watch(envs)
        except WorkerFailed as failure:
            log.error("cannot start: %s; stopping the others", failure)
            self._on_signal(signal.SIGTERM)
            await self._wait_all()
            return failure.exit_code
        finally:
            for reserved in held:
                reserved.close()
        codes = await self._wait_all()
        failed = {i: c for i, c in codes.items() if c != 0}
        if failed:
            log.error("workers that did not stop cleanly (index: exit status): %s", failed)
            return 1
        log.info("stopped")
        return 0

    async def _watch(self, envs: list[dict[str, str]]) -> None:
        """Replace each worker that ends, until a signal."""
        while not self._signals:
            exits = {w.exited: w for w in self._workers.values()}
            woken = asyncio.ensure_future(self._wake.wait())
            done, _ = await asyncio.wait([*exits, woken], return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
            for task in done:
                ended = exits.get(task)
                if ended is None or self._signals:
                    continue
                log.warning(
                    "worker %d (pid %d) ended (exit status %d): starting another",
                    ended.index,
                    ended.process.pid,
                    task.result(),
                )
                worker = await self._start(ended.index, envs[ended.index])
                log.info("worker %d serving again (pid %d)", worker.index, worker.process.pid)

    async def _wait_all(self) -> dict[int, int]:
        return {i: await w.exited for i, w in self._workers.items()}


def supervise(env: Mapping[str, str], count: int, listens: Mapping[str, str]) -> int:
    """Run count workers until SIGTERM or SIGINT; the exit status. listens:
    {setting: address} of the listeners they share ("": none)."""
    try:
        return asyncio.run(Supervisor(env, count, listens).run())
    except OSError as error:
        log.error("cannot start: %s", error)
        return 1


def parse_worker_flag(text: str) -> tuple[int, int]:
    """--worker's I:FD: the worker's index and the fd of its ready pipe."""
    index, _, fd = text.partition(":")
    return int(index), int(fd)


async def serve(gateway: ServingGateway, ready_fd: int | None = None) -> None:
    """Run gateway until SIGTERM or SIGINT, then stop it gracefully. A worker
    (ready_fd: its ready pipe, written once it serves) stops too at the end
    of its stdin: the supervisor is gone."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def supervisor_said() -> None:
        if not os.read(0, 4096):
            loop.remove_reader(0)
            log.warning("the supervisor is gone: stopping")
            stop.set()

    if ready_fd is not None:
        loop.add_reader(0, supervisor_said)
    await gateway.start()
    settle_heap()
    if ready_fd is not None:
        os.write(ready_fd, b"serving\n")
        os.close(ready_fd)
    await stop.wait()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    if ready_fd is not None:
        loop.remove_reader(0)
    await gateway.stop()


class ServingGateway(Protocol):
    """What serve needs of gateway.server.Gateway."""

    async def start(self) -> None: ...

    async def stop(self, grace: float | None = None) -> None: ...
