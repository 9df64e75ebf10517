"""The run: both servers up side by side, each workload against one, then the other."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import psutil

from bench import big, data, procs, servers, small
from bench.report import MIB, Row, human_size
from bench.section import Section

BIG_MIN_RATIO = 0.9
SMALL_MIN_RATIO = 0.8
WARM_UP_BYTES = 32 * MIB
TARGETS = ("raw", "gateway")


@dataclass(frozen=True)
class Measure:
    seconds: float
    peak_rss: int
    cores: float  # the server's CPU seconds per wall second
    driver_cores: float  # the same for this driver process


def _driver_extra(raw: Measure, gateway: Measure) -> dict[str, float]:
    return {
        "driver_cores_raw": round(raw.driver_cores, 3),
        "driver_cores_gateway": round(gateway.driver_cores, 3),
    }


class Runner(Section[Row]):
    def setup(self) -> None:
        self.data = data.BigData(self.args.chunk_size)
        self.profiler: procs.Profiler | None = None
        self.servers: dict[str, procs.Server] = {}
        self._channels: dict[str, grpc.Channel] = {}
        self._rss: dict[str, procs.PeakRss] = {}
        self._objects: dict[int, data.BigObject] = {}
        self._stored: set[int] = set()  # big sizes the gateway holds
        self._warmed: set[str] = set()
        self._small_keys: dict[str, list[str]] = {"raw": [], "gateway": []}
        self._driver = psutil.Process()

    def start_servers(self) -> None:
        self.servers = servers.start(
            self.processes, self.data_dir, self.args.chunk_size, self.options, self.args.server_env
        )
        for name, server in self.servers.items():
            self._channels[name] = grpc.insecure_channel(server.address, options=self.options)
            self._rss[name] = procs.PeakRss(server.pid)
        self.rss_method = self._rss["gateway"].method

    def setup_notes(self) -> list[str]:
        data.encoding_self_check(self.data)
        notes = [
            "gateway Put: spec message, chunk-size data messages each with its CRC32C, last "
            "message with the whole-object CRC32C + SHA-256 and finish_write; data messages are "
            "pre-encoded wire bytes (checked equal to protobuf's), checksums computed before "
            "timing, so the driver costs one memcpy per chunk for both servers; a small "
            "object (under 64 KiB) is one message, spec included, as the client sends it",
            "gateway Get: the driver parses GetResponse but does NOT verify CRC32C (measuring "
            "the server)",
            "raw server: identity serializers, no protobuf/checksums/disk; Download cuts every "
            "message from one preallocated buffer; same server options as the gateway",
            f"peak RSS: {self.rss_method}, reset before each measurement; CPU: the server's "
            "user+sys CPU time per MiB or per op (small cells: includes their short untimed "
            "warm-up); the JSON also has cores (CPU seconds per wall second)",
            "the driver shares the machine: it runs in this process, on the same cores; other "
            "work on the machine (see load average) skews results, so compare ratios, not runs",
        ]
        if self.args.server_env:
            notes.append(f"--server-env for both servers: {self.args.server_env}")
        if self.args.profile:
            py_spy = procs.find_py_spy()
            if py_spy is None:
                notes.append(
                    "--profile: py-spy not found (PATH, next to this python, or $BENCH_PY_SPY): "
                    "profiling skipped"
                )
            else:
                self.profiler = procs.Profiler(
                    py_spy, self.servers["gateway"].pid, self.args.output.parent, self.processes
                )
                notes.append(
                    f"--profile: gateway recorded with {py_spy} (200 Hz, nonblocking) during its "
                    "workloads; py-spy shares the cores, so these figures are perturbed"
                )
        return notes

    def close(self) -> None:
        if self.profiler is not None:
            self.profiler.stop()
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def _measure(self, target: str, fn: Callable[[], object], profile: str) -> Measure:
        """Wall time, peak RSS and CPU of the target server over one call of fn."""
        for server in self.servers.values():
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited:\n{server.log_tail()}")
        profiler = self.profiler if target == "gateway" else None
        if profiler is not None:
            profiler.start(profile)
        process = psutil.Process(self.servers[target].pid)
        rss = self._rss[target]
        try:
            rss.start()
            cpu, own = sum(process.cpu_times()[:2]), sum(self._driver.cpu_times()[:2])
            started = time.perf_counter()
            fn()
            seconds = time.perf_counter() - started
            cpu = sum(process.cpu_times()[:2]) - cpu
            own = sum(self._driver.cpu_times()[:2]) - own
            return Measure(seconds, rss.stop(), cpu / seconds, own / seconds)
        finally:
            if profiler is not None:
                profiler.stop()

    def _progress(self, what: str, target: str, rate: str, measure: Measure) -> None:
        print(
            f"  {what:<20} {target:<12} {rate:>15}   peak RSS {measure.peak_rss / MIB:7.1f} MiB"
            f"   server cores {measure.cores:.2f}   driver cores {measure.driver_cores:.2f}",
            flush=True,
        )

    # Big objects.

    def _object(self, size: int) -> data.BigObject:
        if size not in self._objects:
            print(f"computing checksums of a {human_size(size)} object (untimed)...", flush=True)
            self._objects[size] = self.data.prepare(size)
        return self._objects[size]

    def _calls(self, op: str, size: int) -> dict[str, Callable[[], object]]:
        """One transfer of size bytes per server; a gateway Get first stores the object."""
        obj = self._object(size)
        key = f"bench/big-{size}"
        raw, gateway = self._channels["raw"], self._channels["gateway"]
        if op == "get" and size not in self._stored:
            big.gateway_put(gateway, self.data, obj, key)  # untimed
        if op == "put":
            self._stored.add(size)
            return {
                "raw": lambda: big.raw_put(raw, self.data, size),
                "gateway": lambda: big.gateway_put(gateway, self.data, obj, key),
            }
        return {
            "raw": lambda: big.raw_get(raw, size),
            "gateway": lambda: big.gateway_get(gateway, key, size),
        }

    def _big(self, op: str, size: int) -> None:
        if op not in self._warmed:  # untimed: connections and flow-control windows grow first
            self._warmed.add(op)
            for call in self._calls(op, min(size, WARM_UP_BYTES)).values():
                call()
        calls = self._calls(op, size)
        what = f"{op} {human_size(size)}"
        best: dict[str, Measure] = {}
        for target in TARGETS:
            runs = [
                self._measure(target, calls[target], f"{op}-{human_size(size).replace(' ', '')}")
                for _ in range(self.args.repeat)
            ]
            fastest = min(runs, key=lambda run: run.seconds)
            best[target] = Measure(
                fastest.seconds, max(r.peak_rss for r in runs), fastest.cores, fastest.driver_cores
            )
            self._progress(what, target, f"{size / MIB / fastest.seconds:,.1f} MiB/s", fastest)
        raw, gateway = best["raw"], best["gateway"]
        self.rows.append(
            Row(
                what,
                "MiB/s",
                size / MIB / raw.seconds,
                size / MIB / gateway.seconds,
                BIG_MIN_RATIO,
                raw.peak_rss,
                gateway.peak_rss,
                raw.cores,
                gateway.cores,
                note=f"best of {self.args.repeat}" if self.args.repeat > 1 else "",
                extra=_driver_extra(raw, gateway),
            )
        )

    # Small objects.

    def _cell(
        self, target: str, op: str, concurrency: int, mechanism: str
    ) -> tuple[float, Measure]:
        """(ops/s, measure) of one small-object cell."""
        payload = small.Payload(*data.small_payload(self.args.small_size))
        prefix = f"bench/small/{mechanism}-c{concurrency}-{op}"
        key, warm_key = small.cell_keys(op, prefix, self._small_keys[target] if op != "put" else ())
        cell = small.Cell(
            target,
            self.servers[target].address,
            self.options,
            op,
            concurrency,
            self.args.small_ops,
            self.args.small_seconds,
            key,
            warm_key,
        )
        results: list[small.CellResult] = []
        measure = self._measure(
            target,
            lambda: results.append(small.run(mechanism, cell, payload)),
            f"small-{op}-c{concurrency}",
        )
        if op == "put":
            self._small_keys[target] += [key(n) for n in range(results[0].ops)]
        return results[0].ops_per_s, measure  # the cell times itself, without its warm-up

    def _small(self) -> None:
        mechanisms = (
            small.MECHANISMS if self.args.small_client == "auto" else (self.args.small_client,)
        )
        size = human_size(self.args.small_size)
        for op in ("put", "get"):
            for concurrency in self.args.concurrency:
                what = f"{op} {size} c={concurrency}"
                raw: dict[str, tuple[float, Measure]] = {}
                for mechanism in mechanisms:
                    raw[mechanism] = self._cell("raw", op, concurrency, mechanism)
                    rate, measure = raw[mechanism]
                    self._progress(what, f"raw/{mechanism}", f"{rate:,.0f} ops/s", measure)
                chosen = max(mechanisms, key=lambda m: raw[m][0])
                rate, gateway = self._cell("gateway", op, concurrency, chosen)
                self._progress(what, f"gw/{chosen}", f"{rate:,.0f} ops/s", gateway)
                others = ", ".join(f"raw {m}: {raw[m][0]:,.0f}" for m in mechanisms if m != chosen)
                self.rows.append(
                    Row(
                        what,
                        "ops/s",
                        raw[chosen][0],
                        rate,
                        SMALL_MIN_RATIO,
                        raw[chosen][1].peak_rss,
                        gateway.peak_rss,
                        raw[chosen][1].cores,
                        gateway.cores,
                        note=f"client {chosen}" + (f" ({others})" if others else ""),
                        extra={
                            **{f"raw_ops_s_{m}": round(raw[m][0], 1) for m in mechanisms},
                            **_driver_extra(raw[chosen][1], gateway),
                        },
                    )
                )

    def run_all(self) -> None:
        size = self.args.size
        sizes = sorted({max(1, size // 4), size})
        for op in ("put", "get"):
            if op in self.args.only:
                for each in sizes:
                    self._big(op, each)
        if "small" in self.args.only:
            self._small()

    def profile_summaries(self) -> dict[str, Any]:
        if self.profiler is None:
            return {}
        self.profiler.stop()
        return {name: procs.summarize_profile(path) for name, path in self.profiler.outputs.items()}
