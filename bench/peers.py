"""The peers section: storagegw against the HTTP servers a team would otherwise
run, side by side in one run.

One gateway (local backend) and the peers of bench.peer_servers (FastAPI +
uvicorn writing files with fsync, `rclone serve http`, `rclone serve webdav`),
all up at once, each driven by the client its users would take
(bench.peer_clients):

- put SIZE: a file uploaded in one stream (storagegw, fastapi, rclone-webdav);
- get SIZE: the object downloaded to a file, fsynced (those, and rclone-http
  serving the source file; storagegw in its parallel ranges, and again in one
  stream, storagegw-1, which its parallel ranges are measured against);
- put and get of --small-size objects at --peer-concurrency for --peer-seconds
  (storagegw, fastapi, rclone-webdav).

Each is done --peer-runs times, the paths in turn and the order rotating each
run (a small cell's seconds split among its runs), so that the machine's other
work falls on all of them alike; each figure is the median of its runs: MiB/s
or ops/s, the server's CPU (its process) and the client's (this process) per
GiB or per op, and storagegw's rate over each peer's.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench import data, peer_clients, peer_report, peer_servers, procs, servers
from bench.peer_clients import BigClient, SmallCell
from bench.peer_report import GATEWAY_PATHS, STORAGEGW, STORAGEGW_ONE_STREAM, PeerRow, Sample
from bench.peer_servers import PEERS, UPLOADS, Peer
from bench.report import MIB, human_size
from bench.section import Section

GIB = 1024 * MIB
WARM_UP_BYTES = 32 * MIB


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--peer-runs",
        type=int,
        default=3,
        help="peers: interleaved runs of every transfer and small cell; medians (default 3)",
    )
    parser.add_argument(
        "--peer-seconds",
        type=float,
        default=10.0,
        help="peers: seconds of each small cell, split among its runs (default 10)",
    )
    parser.add_argument(
        "--peer-concurrency", type=int, default=16, help="peers: small-object concurrency (16)"
    )


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.peer_runs < 1 or args.peer_seconds <= 0 or args.peer_concurrency < 1:
        parser.error("--peer-runs, --peer-seconds and --peer-concurrency must be positive")


class PeersSection(Section[PeerRow]):
    name = "peers"
    title = "Peers: storagegw against the HTTP servers a team would otherwise run"

    def setup(self) -> None:
        self.root = self.data_dir / "peers"
        self._gateway: procs.Server | None = None
        self._peers: dict[str, Peer] = {}
        self._processes: dict[int, psutil.Process] = {}
        self._driver = psutil.Process()
        self._stored: dict[str, list[str]] = {}  # small keys each path holds

    def say(self, note: str) -> None:
        print(note, flush=True)
        self.notes.append(note)

    # Setting up.

    def _sources(self) -> dict[str, Path]:
        """The files uploaded (and served by rclone-http): "warm" and "big"."""
        directory = self.root / "source"
        directory.mkdir(parents=True, exist_ok=True)
        bigdata = data.BigData(self.args.chunk_size)
        sources = {}
        for name, size in (("warm", min(self.args.size, WARM_UP_BYTES)), ("big", self.args.size)):
            path = directory / f"{name}-{size}"
            with path.open("wb") as out:
                for chunk in bigdata.raw_chunks(size):
                    out.write(chunk)
            sources[name] = path
        return sources

    def _start(self, names: list[str], sources: dict[str, Path]) -> None:
        a = self.args
        self._gateway = servers.start_gateway(
            self.processes,
            self.root / "gateway.log",
            {"STORAGE_BACKEND": "local", "STORAGE_BASE_PATH": str(self.root / "gateway")},
            a.chunk_size,
            a.server_env,
            name="gateway (peers)",
        )
        for name in names:
            root = sources["big"].parent if name == "rclone-http" else self.root / name
            self._peers[name] = peer_servers.start(
                name, self.processes, root, self.root, a.server_env
            )
        procs.wait_ready(self._gateway, self.options)
        for peer in self._peers.values():
            peer_servers.wait_ready(peer)

    def run(self) -> None:
        names = list(PEERS)
        if peer_servers.rclone_missing():
            names = ["fastapi"]
            self.say(
                "peers: rclone SKIPPED: not installed; `make test-servers` "
                "(scripts/install-test-servers.sh) installs it"
            )
        print("peers: writing the source files (untimed)...", flush=True)
        self.root.mkdir(parents=True, exist_ok=True)
        sources = self._sources()
        try:
            try:
                self._start(names, sources)
            except RuntimeError as error:
                self.failed.append("peers")
                self.say(f"peers FAILED: a server did not start: {error}")
                return
            up = ", ".join(f"{p.name} pid {p.pid}" for p in self._peers.values())
            print(f"peers: up (gateway pid {self._server_pid(STORAGEGW)}, {up})", flush=True)
            self._big(sources)
            self._small()
        finally:
            for peer in self._peers.values():
                self.processes.stop(peer.server.process)
            if self._gateway is not None:
                self.processes.stop(self._gateway.process)
        self.notes.append(self.describe())

    # Measuring.

    def _server_pid(self, path: str) -> int:
        if path in GATEWAY_PATHS:
            if self._gateway is None:
                raise RuntimeError("the gateway is not running")
            return self._gateway.pid
        return self._peers[path].pid

    def _check_alive(self, path: str) -> None:
        server = self._gateway if path in GATEWAY_PATHS else self._peers[path].server
        if server is not None and server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log_tail()}")

    def _cpu(self, path: str) -> Callable[[], tuple[float, float]]:
        """(server CPU s, this process's CPU s) so far, for path's server."""
        pid = self._server_pid(path)
        process = self._processes.setdefault(pid, psutil.Process(pid))

        def read() -> tuple[float, float]:
            return sum(process.cpu_times()[:2]), sum(self._driver.cpu_times()[:2])

        return read

    def _order(self, paths: list[str], run: int) -> list[str]:
        shift = run % len(paths)
        return paths[shift:] + paths[:shift]

    def _add(
        self, workload: str, unit: str, cell: tuple[str, str], runs: dict[str, list[Sample]]
    ) -> None:
        labels = {name: peer.label for name, peer in self._peers.items()}
        labels |= {STORAGEGW: "storagegw", STORAGEGW_ONE_STREAM: "storagegw, one stream"}
        rows = peer_report.rows_of(workload, unit, cell, runs, labels)
        self.rows += rows
        for row in rows:
            figures = Sample(row.rate, row.server_cpu, row.client_cpu)
            peer_report.progress(workload, row.path, unit, figures, "median")
            if row.path != STORAGEGW:
                print(f"  {'':<18} {'':<14} storagegw/this {row.ratio:.2f}x", flush=True)

    # A big object, one stream.

    def _big_key(self, path: str, sources: dict[str, Path], name: str) -> str:
        """The key of source name ("warm", "big") on path: rclone-http serves the
        source; storagegw-1 reads what storagegw stored."""
        return sources[name].name if path == "rclone-http" else f"peers-{name}"

    def _big_paths(self, op: str) -> list[str]:
        if op == "put":
            return [STORAGEGW, *(name for name in self._peers if name in UPLOADS)]
        return [STORAGEGW, STORAGEGW_ONE_STREAM, *self._peers]

    def _client(self, path: str) -> BigClient:
        if self._gateway is None:
            raise RuntimeError("the gateway is not running")
        peer = None if path in GATEWAY_PATHS else self._peers[path]
        parallel = 1 if path == STORAGEGW_ONE_STREAM else None
        return peer_clients.big_client(peer, self._gateway.address, self.args.chunk_size, parallel)

    def _warm_up(self, clients: dict[str, BigClient], sources: dict[str, Path]) -> None:
        """Untimed: connections up; each path moves the warm-up file both ways intact."""
        warm = sources["warm"]
        expected = hashlib.sha256(warm.read_bytes()).hexdigest()
        for path in self._big_paths("put"):
            clients[path].put(self._big_key(path, sources, "warm"), warm)
        for path in self._big_paths("get"):
            dest = self.root / f"download-{path}"
            clients[path].download(self._big_key(path, sources, "warm"), dest)
            got = hashlib.sha256(dest.read_bytes()).hexdigest()
            dest.unlink()
            if got != expected:
                raise RuntimeError(f"{path} gave back other bytes than were put: SHA-256 {got}")

    def _big_once(self, op: str, path: str, client: BigClient, sources: dict[str, Path]) -> Sample:
        self._check_alive(path)
        key, size = self._big_key(path, sources, "big"), self.args.size
        dest = self.root / f"download-{path}"
        cpu = self._cpu(path)
        server_before, client_before = cpu()
        started = time.perf_counter()
        if op == "put":
            client.put(key, sources["big"])
        else:
            client.download(key, dest)
        seconds = time.perf_counter() - started
        server_after, client_after = cpu()
        if op == "get":  # untimed
            got = dest.stat().st_size
            dest.unlink()
            if got != size:
                raise RuntimeError(f"{path} Get of {key!r} gave {got} bytes, expected {size}")
        gib = size / GIB
        return Sample(
            size / MIB / seconds,
            (server_after - server_before) / gib,
            (client_after - client_before) / gib,
        )

    def _big(self, sources: dict[str, Path]) -> None:
        clients = {path: self._client(path) for path in self._big_paths("get")}
        try:
            self._warm_up(clients, sources)
            for op in ("put", "get"):
                workload = f"{op} {human_size(self.args.size)}"
                paths = self._big_paths(op)
                runs: dict[str, list[Sample]] = {path: [] for path in paths}
                for run in range(self.args.peer_runs):
                    for path in self._order(paths, run):
                        sample = self._big_once(op, path, clients[path], sources)
                        runs[path].append(sample)
                        peer_report.progress(workload, path, "MiB/s", sample)
                self._add(workload, "MiB/s", (op, "big"), runs)
        finally:
            for client in clients.values():
                client.close()

    # Small objects at concurrency.

    def _small_once(self, op: str, path: str, run: int, payload: bytes) -> Sample:
        self._check_alive(path)
        a = self.args
        stored = self._stored.setdefault(path, [])
        if op == "put":
            prefix = f"peers-small-{run}"

            def key(n: int) -> str:
                return f"{prefix}-{n:06d}"

            def warm_key(n: int) -> str:
                return f"{prefix}-warm-{n:06d}"

        else:
            if not stored:
                raise RuntimeError(f"no small objects stored on {path} to get")

            def key(n: int) -> str:
                return stored[n % len(stored)]

            warm_key = key
        cell = SmallCell(op, a.peer_concurrency, a.peer_seconds / a.peer_runs, key, warm_key)
        if self._gateway is None:
            raise RuntimeError("the gateway is not running")
        peer = None if path in GATEWAY_PATHS else self._peers[path]
        result = peer_clients.small_round(
            peer, self._gateway.address, payload, cell, self._cpu(path)
        )
        if op == "put":
            stored += [key(n) for n in range(result.ops)]
        ops = max(result.ops, 1)
        return Sample(
            result.ops / result.seconds,
            result.server_cpu_s / ops * 1e3,
            result.client_cpu_s / ops * 1e3,
        )

    def _small(self) -> None:
        a = self.args
        payload = data.small_payload(a.small_size)[0]
        paths = [STORAGEGW, *(name for name in self._peers if name in UPLOADS)]
        for op in ("put", "get"):
            workload = f"{op} {human_size(a.small_size)} c={a.peer_concurrency}"
            runs: dict[str, list[Sample]] = {path: [] for path in paths}
            for run in range(a.peer_runs):
                for path in self._order(paths, run):
                    sample = self._small_once(op, path, run, payload)
                    runs[path].append(sample)
                    peer_report.progress(workload, path, "ops/s", sample)
            self._add(workload, "ops/s", (op, "small"), runs)

    # Results.

    def describe(self) -> str:
        a = self.args
        labels = "; ".join(f"{name}: {peer.version}" for name, peer in self._peers.items())
        return (
            f"peers: one gateway (local backend) and the peers up at once ({labels}); "
            f"medians of {a.peer_runs} runs, the paths in turn with the order rotating; small "
            f"cells: {a.peer_seconds:g} s each split among the runs, after an untimed warm-up; "
            "CPU: the server process's and this driver's (the client's) user+sys time over the "
            "timed transfer or pass; storagegw: its Python client with its defaults (put_file "
            "resumable, download_file to a temporary file, fsynced, renamed, above 64 MiB in 4 "
            "parallel ranges; CRC32C per chunk and per object on both ends; the gateway computes "
            "a SHA-256 per object on Put, the client none), the gateway fsyncs each object and "
            "its directory; storagegw-1: the same download_file with parallel=1 (one stream); "
            "fastapi: PUT streams the body to a temporary file, fsync, rename (no directory "
            "fsync), GET a FileResponse; rclone: `rclone serve http|webdav DIR` with its defaults "
            "(no VFS cache): a webdav PUT writes into the object's file in place, with no fsync "
            "and no rename, so it is not durable when answered and a broken PUT leaves a partial "
            "object; the HTTP peers' big downloads are streamed by httpx to a temporary file, "
            "fsynced, renamed, and only their sizes checked (the warm-up checks SHA-256 on every "
            "path); rclone-http serves the source file itself; CPU figures are whole clock ticks "
            "(10 ms), coarse at small sizes; boto3 direct on Ceph RGW: see the S3 section"
        )

    def render(self) -> str:
        runs = f"medians of {self.args.peer_runs} interleaved runs"
        return peer_report.render(f"{self.title} ({runs})", self.rows)

    def all_met(self) -> bool:
        return not self.failed and all(row.met for row in self.rows)

    def as_json(self) -> list[dict[str, Any]]:
        return peer_report.as_json(self.rows)
