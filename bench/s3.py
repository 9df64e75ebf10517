"""The S3 section: the gateway on its S3 backend against direct aioboto3.

For each S3 server (moto, Ceph RGW; started and stopped here, one after the
other) a gateway process is started with STORAGE_BACKEND=s3 pointed at the
server's bucket, and the bench process holds a direct aioboto3 client built
from the same S3Settings (part size, concurrency, botocore Config; see
bench.s3_direct). Then, for SIZE/4 and SIZE, side by side on the same server:

- put: direct multipart upload, then a gRPC Put streamed to the gateway
  (which uploads it to the same server);
- get: direct streamed GetObject, then a gRPC Get streamed from the gateway;
  both hash what they read (inside the timed run) and compare it with the
  SHA-256 of what was put, so each path's Put and Get are verified.

Measured per transfer: wall time, the gateway's peak RSS and CPU, the S3
server's peak RSS (its front process: moto's, radosgw's) and CPU (all its
processes), and this driver's CPU. The objects are deleted after each size
(and Ceph's garbage collector is run: its memstore OSD keeps data in RAM).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil

from bench import big, procs, s3_servers, servers
from bench.data import BigData, BigObject
from bench.report import MIB, S3Row, human_size
from bench.s3_direct import DirectClient
from bench.s3_servers import S3Server
from gateway.backends.s3_settings import S3Settings
from gateway.config import load

S3_MIN_RATIO = 0.8
WARM_UP_BYTES = 32 * MIB
PATHS = ("direct", "gateway")


@dataclass(frozen=True)
class S3Measure:
    seconds: float
    gateway_peak_rss: int  # 0 for direct transfers
    server_peak_rss: int
    gateway_cores: float  # CPU seconds per wall second
    server_cores: float
    driver_cores: float


def backend_env(server: S3Server, part_size: int, concurrency: int) -> dict[str, str]:
    """The gateway's S3 settings for server's bench bucket."""
    return {
        "STORAGE_BACKEND": "s3",
        "STORAGE_S3_BUCKET": s3_servers.BUCKET,
        "STORAGE_S3_ENDPOINT": server.endpoint,
        "STORAGE_S3_ACCESS_KEY": server.access_key,
        "STORAGE_S3_SECRET_KEY": server.secret_key,
        "STORAGE_S3_REGION": server.region,
        "STORAGE_S3_ADDRESSING_STYLE": "path",
        "STORAGE_S3_PART_SIZE": str(part_size),
        "STORAGE_S3_CONCURRENCY": str(concurrency),
    }


def settings_of(env: dict[str, str], chunk_size: int) -> S3Settings:
    """The S3Settings a gateway started with env reads (its own configuration code)."""
    config = load(servers.gateway_env(env, chunk_size))
    settings = config.buckets[config.default_bucket].s3
    if settings is None:
        raise RuntimeError("the gateway's configuration has no S3 settings")
    return settings


@dataclass
class _Setup:
    """One S3 server with its gateway and the direct client."""

    server: S3Server
    gateway: procs.Server
    direct: DirectClient
    channel: grpc.Channel
    gateway_rss: procs.PeakRss
    server_rss: procs.PeakRss
    profiler: procs.Profiler | None


class S3Section:
    def __init__(
        self,
        args: argparse.Namespace,
        processes: procs.Processes,
        data_dir: Path,
        options: list[tuple[str, Any]],
    ) -> None:
        self.args = args
        self.processes = processes
        self.data_dir = data_dir
        self.options = options
        self.rows: list[S3Row] = []
        self.notes: list[str] = []
        self.facts: dict[str, str] = {}
        self.failed: list[str] = []  # servers that should have run but could not start
        self.profiles: dict[str, Path] = {}
        self.data = BigData(args.chunk_size)
        self._objects: dict[int, BigObject] = {}
        self._driver = psutil.Process()
        self._py_spy = procs.find_py_spy() if args.profile else None

    def run(self) -> None:
        self._describe()
        for name in self.args.s3_servers:
            if name == "ceph" and (missing := s3_servers.ceph_missing()):
                self._say(
                    f"S3 on ceph SKIPPED: Ceph is not installed (missing {', '.join(missing)}); "
                    "`make test-servers` (scripts/install-test-servers.sh) installs it"
                )
                self.facts["S3 server ceph"] = "not installed: skipped"
                continue
            self._server(name)

    def _say(self, note: str) -> None:
        print(note, flush=True)
        self.notes.append(note)

    def _describe(self) -> None:
        a = self.args
        versions = ", ".join(
            f"{name} {importlib.metadata.version(name)}"
            for name in ("aioboto3", "aiobotocore", "botocore")
        )
        self.facts["S3 client"] = (
            f"{versions}; part size {human_size(a.s3_part_size)}, concurrency "
            f"{a.s3_concurrency}, path-style addressing, the same for the gateway and direct"
        )
        self.notes += [
            "S3 direct: aioboto3 in this driver process, one long-lived client built by the S3 "
            "driver's own new_session/client_config from the S3Settings the gateway reads; Put: "
            "a multipart upload (one PutObject up to one part, as the driver), concurrency "
            "UploadParts in flight and the next part built meanwhile, parts cut on the fly from "
            "the chunks the gateway Put sends (one copy per part); Get: one GetObject streamed "
            "with iter_chunks(chunk size)",
            "S3 gateway: python -m gateway with STORAGE_BACKEND=s3 on the same server and bucket; "
            "Put streamed over gRPC as in the local section (pre-encoded messages with CRC32C, "
            "whole-object CRC32C + SHA-256 at the end); Get streamed back",
            "S3 integrity: every Get (both paths) hashes what it reads with SHA-256 inside the "
            "timed run and must equal the SHA-256 of what was put; the gateway also checks its "
            "Put stream's SHA-256 itself",
            "S3 RSS: the gateway's peak RSS during its transfers, and the S3 server's front "
            "process (moto's server, radosgw) during each path's transfers; Ceph's OSD is "
            "memstore (it keeps the objects in RAM by design) and is not reported; S3 CPU: "
            "all the server's processes (Ceph: mon, OSD, radosgw), per MiB moved",
            "S3 objects are deleted after each size (untimed); on Ceph, radosgw-admin gc process "
            "then frees their data at once",
            "the driver, the gateway and the S3 server share the machine's cores: the gateway "
            "path runs one more process (the gateway) on them than the direct path",
        ]

    def _object(self, size: int) -> BigObject:
        if size not in self._objects:
            print(f"computing checksums of a {human_size(size)} object (untimed)...", flush=True)
            self._objects[size] = self.data.prepare(size)
        return self._objects[size]

    def _server(self, name: str) -> None:
        print(f"S3 on {name}: starting the server...", flush=True)
        try:
            server = s3_servers.start(name, self.data_dir / f"s3-{name}")
        except Exception as error:
            self.failed.append(name)
            self._say(f"S3 on {name} FAILED: the server did not start: {error}")
            return
        self.facts[f"S3 server {name}"] = server.label
        with contextlib.ExitStack() as stack:
            stack.callback(server.stop)
            setup = self._setup(server, stack)
            print(
                f"S3 on {name}: up ({server.endpoint}, server pid {server.front_pid}, gateway pid "
                f"{setup.gateway.pid})",
                flush=True,
            )
            self._warm_up(setup)
            size = self.args.size
            for each in sorted({max(1, size // 4), size}):
                self._size(setup, each)
            if setup.profiler is not None:
                setup.profiler.stop()
                self.profiles.update(setup.profiler.outputs)

    def _setup(self, server: S3Server, stack: contextlib.ExitStack) -> _Setup:
        a = self.args
        env = backend_env(server, a.s3_part_size, a.s3_concurrency)
        settings = settings_of(env, a.chunk_size)
        log = self.data_dir / f"gateway-s3-{server.name}.log"
        gateway = servers.start_gateway(
            self.processes, log, env, a.chunk_size, a.server_env, name=f"gateway ({server.name})"
        )
        stack.callback(self.processes.stop, gateway.process)
        procs.wait_ready(gateway, self.options)
        direct = DirectClient(settings)
        stack.callback(direct.close)
        channel = grpc.insecure_channel(gateway.address, options=self.options)
        stack.callback(channel.close)
        gateway_rss, server_rss = procs.PeakRss(gateway.pid), procs.PeakRss(server.front_pid)
        self.notes.append(
            f"S3 peak RSS on {server.name}: gateway {gateway_rss.method}, server "
            f"{server_rss.method}"
        )
        profiler = None
        if self._py_spy is not None:
            profiler = procs.Profiler(self._py_spy, gateway.pid, a.output.parent, self.processes)
            stack.callback(profiler.stop)
        return _Setup(server, gateway, direct, channel, gateway_rss, server_rss, profiler)

    # Transfers.

    def _put(self, setup: _Setup, path: str, obj: BigObject, key: str) -> None:
        if path == "direct":
            setup.direct.put(self.data, obj.size, key)
        else:
            big.gateway_put(setup.channel, self.data, obj, key)

    def _get(self, setup: _Setup, path: str, obj: BigObject, key: str) -> None:
        if path == "direct":
            digest = setup.direct.get_sha256(key, obj.size, self.args.chunk_size)
        else:
            digest = big.gateway_get_sha256(setup.channel, key, obj.size)
        if digest != obj.sha256:
            raise RuntimeError(
                f"{path} Get of {key!r} read back other bytes than were put: SHA-256 "
                f"{digest.hex()}, sent {obj.sha256.hex()}"
            )

    def _warm_up(self, setup: _Setup) -> None:
        """Untimed: connections opened, windows grown, the gateway's client created."""
        obj = self._object(min(self.args.size, WARM_UP_BYTES))
        keys = [f"bench/warm-{path}" for path in PATHS]
        for path, key in zip(PATHS, keys, strict=True):
            self._put(setup, path, obj, key)
            self._get(setup, path, obj, key)
        setup.direct.delete(*keys)
        setup.server.collect_garbage()

    def _measure(self, setup: _Setup, path: str, fn: Callable[[], None], profile: str) -> S3Measure:
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
        return S3Measure(
            seconds, gateway_peak if through_gateway else 0, server_peak, used[0], used[1], used[2]
        )

    def _progress(self, what: str, path: str, size: int, measure: S3Measure) -> None:
        gateway = f"gw RSS {measure.gateway_peak_rss / MIB:6.1f} MiB" if path == "gateway" else ""
        print(
            f"  {what:<20} {path:<8} {size / MIB / measure.seconds:>9,.1f} MiB/s   {gateway:<18}"
            f" S3 RSS {measure.server_peak_rss / MIB:7.1f} MiB   gw cores "
            f"{measure.gateway_cores:.2f}   S3 cores {measure.server_cores:.2f}   driver cores "
            f"{measure.driver_cores:.2f}",
            flush=True,
        )

    def _size(self, setup: _Setup, size: int) -> None:
        obj = self._object(size)
        tag = human_size(size).replace(" ", "")
        keys = {path: f"bench/{path}-{tag}" for path in PATHS}
        server = setup.server
        for op, transfer in (("put", self._put), ("get", self._get)):
            what = f"{server.name} {op} {human_size(size)}"
            best: dict[str, S3Measure] = {}
            for path in PATHS:
                runs = []
                for attempt in range(self.args.repeat):
                    if op == "put" and attempt:
                        # Untimed: Ceph's memstore would fill up with overwritten data.
                        setup.direct.delete(keys[path])
                        server.collect_garbage()
                    call = functools.partial(transfer, setup, path, obj, keys[path])
                    runs.append(self._measure(setup, path, call, f"s3-{server.name}-{op}-{tag}"))
                fastest = min(runs, key=lambda run: run.seconds)
                best[path] = S3Measure(
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
                S3Row(
                    server.name,
                    op,
                    size,
                    size / MIB / direct.seconds,
                    size / MIB / gateway.seconds,
                    S3_MIN_RATIO,
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
