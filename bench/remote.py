"""What the S3 and GCS sections share: the gateway on a storage backend against
a direct client of the same storage server, in the same run.

A section (bench.s3, bench.gcs) names its servers and, for each, how to start
it, the gateway's backend settings for it and the direct client. Then, per
server (started and stopped here, one after the other), a gateway process is
started on that backend pointed at the server's bucket, and this process holds
a direct client built from the same settings the gateway reads. For SIZE/4 and
SIZE, side by side on the same server:

- put: the direct upload, then a gRPC Put streamed to the gateway (which
  uploads it to the same server);
- get: the direct streamed download, then a gRPC Get streamed from the
  gateway; both hash what they read (inside the timed run) and compare it with
  the SHA-256 of what was put, so each path's Put and Get are verified.

Measured per transfer: wall time, the gateway's peak RSS and CPU, the storage
server's peak RSS (its front process) and CPU (all its processes), and this
driver's CPU. The objects are deleted after each size (and the server's
garbage collection run, where it has one).
"""

from __future__ import annotations

import abc
import contextlib
import functools
import importlib.metadata
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import grpc
import psutil

from bench import big, procs, servers
from bench.data import BigData, BigObject
from bench.report import MIB, RemoteResults, RemoteRow, human_size
from bench.section import Section
from gateway.config import BucketConfig, load

MIN_RATIO = 0.8
WARM_UP_BYTES = 32 * MIB
PATHS = ("direct", "gateway")


@dataclass
class StorageServer:
    """A storage server the bench started, up and holding its bench bucket."""

    name: str  # "moto", "ceph", "fake-gcs"
    label: str  # with its version, for the report
    endpoint: str
    front_pid: int  # the process answering requests: its peak RSS is reported
    pids: list[int]  # every process of the server: their CPU time is summed
    stop: Callable[[], None]
    # Frees the data of deleted objects now (Ceph's GC otherwise waits hours).
    collect_garbage: Callable[[], None]


class DirectClient(Protocol):
    """The baseline: the storage server's own client library in this process."""

    def put(self, data: BigData, size: int, key: str) -> None: ...

    def get_sha256(self, key: str, size: int, chunk_size: int) -> bytes:
        """SHA-256 of the object as read back; its size must be size."""
        ...

    def delete(self, *keys: str) -> None: ...

    def close(self) -> None: ...


ServerT = TypeVar("ServerT", bound=StorageServer)
T = TypeVar("T")


def bucket_config(env: dict[str, str], chunk_size: int) -> BucketConfig:
    """The bucket a gateway started with env serves (its own configuration code)."""
    config = load(servers.gateway_env(env, chunk_size))
    return config.buckets[config.default_bucket]


def versions(*packages: str) -> str:
    """ "name version, ..." of installed packages, for the report."""
    return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in packages)


def settings_of(bucket: BucketConfig, settings: T | None) -> T:
    """bucket's backend settings (bucket.s3, bucket.gcs), which must be there."""
    if settings is None:
        raise RuntimeError(f"the gateway's bucket {bucket.name!r} has no {bucket.backend} settings")
    return settings


@dataclass(frozen=True)
class Measure:
    seconds: float
    gateway_peak_rss: int  # 0 for direct transfers
    server_peak_rss: int
    gateway_cores: float  # CPU seconds per wall second
    server_cores: float
    driver_cores: float


@dataclass
class _Setup(Generic[ServerT]):
    """One storage server with its gateway and the direct client."""

    server: ServerT
    gateway: procs.Server
    direct: DirectClient
    channel: grpc.Channel
    gateway_rss: procs.PeakRss
    server_rss: procs.PeakRss
    profiler: procs.Profiler | None


class RemoteSection(Section[RemoteRow], abc.ABC, Generic[ServerT]):
    """One section: its servers one after the other, each gateway vs direct."""

    kind: str  # "S3", "GCS": in messages, the table, file and JSON names
    title: str  # what the section compares, for the report's title

    def setup(self) -> None:
        self.facts: dict[str, str] = {}
        self.profiles: dict[str, Path] = {}
        self.data = BigData(self.args.chunk_size)
        self._objects: dict[int, BigObject] = {}
        self._driver = psutil.Process()
        self._py_spy = procs.find_py_spy() if self.args.profile else None

    # What a section says.

    @abc.abstractmethod
    def server_names(self) -> list[str]:
        """The servers to run on, in order."""

    def skipped(self, name: str) -> bool:
        """True (after saying why) when server name cannot run here."""
        return False

    @abc.abstractmethod
    def start_server(self, name: str) -> ServerT:
        """Server name, up and holding an empty bench bucket."""

    @abc.abstractmethod
    def backend_env(self, server: ServerT) -> dict[str, str]:
        """The gateway's backend settings (STORAGE_*) for server's bench bucket."""

    @abc.abstractmethod
    def direct_client(self, bucket: BucketConfig) -> DirectClient:
        """The direct client, with the settings of the bucket the gateway serves."""

    @abc.abstractmethod
    def describe(self) -> None:
        """The section's facts and notes (self.facts, self.notes)."""

    def warm_up_bytes(self) -> int:
        return WARM_UP_BYTES

    # The run.

    def run(self) -> None:
        self.describe()
        self.notes += [
            f"{self.kind} integrity: every Get (both paths) hashes what it reads with SHA-256 "
            "inside the timed run and must equal the SHA-256 of what was put; the gateway also "
            "checks its Put stream's SHA-256 itself",
            f"the driver, the gateway and the {self.kind} server share the machine's cores: the "
            "gateway path runs one more process (the gateway) on them than the direct path",
        ]
        for name in self.server_names():
            if not self.skipped(name):
                self._server(name)

    def results(self) -> RemoteResults:
        return RemoteResults(self.kind, self.title, self.rows)

    def say(self, note: str) -> None:
        print(note, flush=True)
        self.notes.append(note)

    def _object(self, size: int) -> BigObject:
        if size not in self._objects:
            print(f"computing checksums of a {human_size(size)} object (untimed)...", flush=True)
            self._objects[size] = self.data.prepare(size)
        return self._objects[size]

    def _server(self, name: str) -> None:
        print(f"{self.kind} on {name}: starting the server...", flush=True)
        try:
            server = self.start_server(name)
        except Exception as error:
            self.failed.append(name)
            self.say(f"{self.kind} on {name} FAILED: the server did not start: {error}")
            return
        self.facts[f"{self.kind} server {name}"] = server.label
        with contextlib.ExitStack() as stack:
            stack.callback(server.stop)
            setup = self._setup(server, stack)
            print(
                f"{self.kind} on {name}: up ({server.endpoint}, server pid {server.front_pid}, "
                f"gateway pid {setup.gateway.pid})",
                flush=True,
            )
            self._warm_up(setup)
            size = self.args.size
            for each in sorted({max(1, size // 4), size}):
                self._size(setup, each)
            if setup.profiler is not None:
                setup.profiler.stop()
                self.profiles.update(setup.profiler.outputs)

    def _setup(self, server: ServerT, stack: contextlib.ExitStack) -> _Setup[ServerT]:
        a = self.args
        env = self.backend_env(server)
        log = self.data_dir / f"gateway-{self.kind.lower()}-{server.name}.log"
        gateway = servers.start_gateway(
            self.processes, log, env, a.chunk_size, a.server_env, name=f"gateway ({server.name})"
        )
        stack.callback(self.processes.stop, gateway.process)
        procs.wait_ready(gateway, self.options)
        direct = self.direct_client(bucket_config(env, a.chunk_size))
        stack.callback(direct.close)
        channel = grpc.insecure_channel(gateway.address, options=self.options)
        stack.callback(channel.close)
        gateway_rss, server_rss = procs.PeakRss(gateway.pid), procs.PeakRss(server.front_pid)
        self.notes.append(
            f"{self.kind} peak RSS on {server.name}: gateway {gateway_rss.method}, server "
            f"{server_rss.method}"
        )
        profiler = None
        if self._py_spy is not None:
            profiler = procs.Profiler(self._py_spy, gateway.pid, a.output.parent, self.processes)
            stack.callback(profiler.stop)
        return _Setup(server, gateway, direct, channel, gateway_rss, server_rss, profiler)

    # Transfers.

    def _put(self, setup: _Setup[ServerT], path: str, obj: BigObject, key: str) -> None:
        if path == "direct":
            setup.direct.put(self.data, obj.size, key)
        else:
            big.gateway_put(setup.channel, self.data, obj, key)

    def _get(self, setup: _Setup[ServerT], path: str, obj: BigObject, key: str) -> None:
        if path == "direct":
            digest = setup.direct.get_sha256(key, obj.size, self.args.chunk_size)
        else:
            digest = big.gateway_get_sha256(setup.channel, key, obj.size)
        if digest != obj.sha256:
            raise RuntimeError(
                f"{path} Get of {key!r} read back other bytes than were put: SHA-256 "
                f"{digest.hex()}, sent {obj.sha256.hex()}"
            )

    def _warm_up(self, setup: _Setup[ServerT]) -> None:
        """Untimed: connections opened, windows grown, the gateway's client created."""
        obj = self._object(min(self.args.size, self.warm_up_bytes()))
        keys = [f"bench/warm-{path}" for path in PATHS]
        for path, key in zip(PATHS, keys, strict=True):
            self._put(setup, path, obj, key)
            self._get(setup, path, obj, key)
        setup.direct.delete(*keys)
        setup.server.collect_garbage()

    def _measure(
        self, setup: _Setup[ServerT], path: str, fn: Callable[[], None], profile: str
    ) -> Measure:
        """Wall time, peak RSS and CPU over one call of fn."""
        if setup.gateway.process.poll() is not None:
            raise RuntimeError(f"{setup.gateway.name} exited:\n{setup.gateway.log_tail()}")
        through_gateway = path == "gateway"
        profiler = setup.profiler if through_gateway else None
        if profiler is not None:
            profiler.start(profile)
        gateway = psutil.Process(setup.gateway.pid)
        server = [psutil.Process(pid) for pid in setup.server.pids]

        def cpu() -> tuple[float, float, float]:
            return (
                sum(gateway.cpu_times()[:2]),
                sum(sum(p.cpu_times()[:2]) for p in server),
                sum(self._driver.cpu_times()[:2]),
            )

        try:
            setup.gateway_rss.start()
            setup.server_rss.start()
            before = cpu()
            started = time.perf_counter()
            fn()
            seconds = time.perf_counter() - started
            after = cpu()
            gateway_peak = setup.gateway_rss.stop()
            server_peak = setup.server_rss.stop()
        finally:
            if profiler is not None:
                profiler.stop()
        used = [(b - a) / seconds for a, b in zip(before, after, strict=True)]
        return Measure(
            seconds, gateway_peak if through_gateway else 0, server_peak, used[0], used[1], used[2]
        )

    def _progress(self, what: str, path: str, size: int, measure: Measure) -> None:
        gateway = f"gw RSS {measure.gateway_peak_rss / MIB:6.1f} MiB" if path == "gateway" else ""
        kind = self.kind
        print(
            f"  {what:<20} {path:<8} {size / MIB / measure.seconds:>9,.1f} MiB/s   {gateway:<18}"
            f" {kind} RSS {measure.server_peak_rss / MIB:7.1f} MiB   gw cores "
            f"{measure.gateway_cores:.2f}   {kind} cores {measure.server_cores:.2f}   driver "
            f"cores {measure.driver_cores:.2f}",
            flush=True,
        )

    def _size(self, setup: _Setup[ServerT], size: int) -> None:
        obj = self._object(size)
        tag = human_size(size).replace(" ", "")
        keys = {path: f"bench/{path}-{tag}" for path in PATHS}
        server = setup.server
        for op, transfer in (("put", self._put), ("get", self._get)):
            what = f"{server.name} {op} {human_size(size)}"
            best: dict[str, Measure] = {}
            for path in PATHS:
                runs = []
                for attempt in range(self.args.repeat):
                    if op == "put" and attempt:
                        # Untimed: Ceph's memstore would fill up with overwritten data.
                        setup.direct.delete(keys[path])
                        server.collect_garbage()
                    call = functools.partial(transfer, setup, path, obj, keys[path])
                    profile = f"{self.kind.lower()}-{server.name}-{op}-{tag}"
                    runs.append(self._measure(setup, path, call, profile))
                fastest = min(runs, key=lambda run: run.seconds)
                best[path] = Measure(
                    fastest.seconds,
                    max(run.gateway_peak_rss for run in runs),
                    max(run.server_peak_rss for run in runs),
                    fastest.gateway_cores,
                    fastest.server_cores,
                    fastest.driver_cores,
                )
                self._progress(what, path, size, fastest)
            direct, gateway = best["direct"], best["gateway"]
            self.rows.append(
                RemoteRow(
                    server.name,
                    op,
                    size,
                    size / MIB / direct.seconds,
                    size / MIB / gateway.seconds,
                    MIN_RATIO,
                    gateway.gateway_peak_rss,
                    direct.server_peak_rss,
                    gateway.server_peak_rss,
                    gateway.gateway_cores,
                    direct.server_cores,
                    gateway.server_cores,
                    direct.driver_cores,
                    gateway.driver_cores,
                    note=f"best of {self.args.repeat}" if self.args.repeat > 1 else "",
                )
            )
        setup.direct.delete(*keys.values())
        server.collect_garbage()

    def profile_summaries(self) -> dict[str, Any]:
        return {name: procs.summarize_profile(path) for name, path in self.profiles.items()}
