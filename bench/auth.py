"""The authentication section: what TLS, mutual TLS, a JWT and a policy cost.

One gateway per way of calling (bench.auth_setup.variants: none, TLS, mTLS,
JWT, JWT + policy), all on the local backend and all up at once, so every
cell runs them one after the other in the same minute of the machine's life:
4 KiB Put and Get at the small-object concurrencies (ops/s, gateway and
client CPU per op; ratios against none), then a Put and a Get of --size over
TLS against plaintext (MiB/s, CPU per MiB on both ends; ratio against
plaintext). Certificates come from trustme, the token from an RS256 key whose
JWKS the gateway reads from a file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import grpc
import psutil

from bench import big, data, procs, servers, small
from bench.auth_setup import Variant, make_material, variants
from bench.report import MIB, human_size
from bench.section import Section

SMALL_MIN_RATIO = 0.9  # a JWT or mTLS against none
BIG_MIN_RATIO = 0.8  # TLS against plaintext
TARGETED = {"jwt", "mtls"}
BIG_VARIANTS = ("none", "tls")
WARM_UP_BYTES = 32 * MIB
# A small cell's ops and seconds are split into this many rounds (times --repeat).
SMALL_ROUNDS = 4


@dataclass(frozen=True)
class AuthRow:
    workload: str  # "put 4 KiB c=16", "get 1 GiB"
    variant: str
    unit: str  # "ops/s" or "MiB/s"
    rate: float
    baseline: float  # the same cell without authentication (or over plaintext)
    gateway_cpu_s: float
    client_cpu_s: float
    amount: float  # ops or MiB the CPU figures were spent on
    min_ratio: float | None  # None: shown, no target
    baseline_cpu: float  # the baseline's gateway + client CPU seconds per op or MiB
    load: float  # 1-minute load average as the run began (a small cell: over its rounds)

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline if self.baseline else 0.0

    @property
    def cpu(self) -> float:
        """Gateway + client CPU seconds per op or MiB."""
        return (self.gateway_cpu_s + self.client_cpu_s) / self.amount if self.amount else 0.0

    @property
    def cpu_ratio(self) -> float:
        """The ratio the two ends' CPU alone gives (the baseline's per op or MiB over
        this variant's): what the throughput ratio comes to where client and gateway
        share the same busy cores, and less moved than throughput by other work."""
        return self.baseline_cpu / self.cpu if self.cpu else 0.0

    @property
    def met(self) -> bool:
        return self.min_ratio is None or self.ratio >= self.min_ratio

    def per_unit(self, cpu_s: float) -> str:
        if not self.amount:
            return "-"
        if self.unit == "ops/s":
            return f"{cpu_s / self.amount * 1e6:,.0f} us/op"
        return f"{cpu_s / self.amount * 1e3:.2f} ms/MiB"


@dataclass(frozen=True)
class _Run:
    rate: float  # ops/s or MiB/s
    gateway_cpu_s: float
    client_cpu_s: float
    amount: float  # ops or MiB the CPU went to
    load: float  # 1-minute load average as it began

    @property
    def cpu(self) -> float:
        return (self.gateway_cpu_s + self.client_cpu_s) / self.amount if self.amount else 0.0


@dataclass(frozen=True)
class _Round:
    """One round of a small cell on one variant."""

    ops: int  # timed
    seconds: float
    gateway_cpu_s: float
    client_cpu_s: float
    all_ops: int  # with the untimed warm-up, which the CPU figures include
    load: float  # 1-minute load average as it began


def _total(rounds: list[_Round]) -> _Run:
    """The rounds of one small cell on one variant as one run."""
    seconds = sum(each.seconds for each in rounds)
    return _Run(
        sum(each.ops for each in rounds) / seconds if seconds else 0.0,
        sum(each.gateway_cpu_s for each in rounds),
        sum(each.client_cpu_s for each in rounds),
        sum(each.all_ops for each in rounds),
        sum(each.load for each in rounds) / len(rounds),
    )


class AuthSection(Section[AuthRow]):
    """Variants side by side (bench.telemetry's section is one of these too)."""

    name = "auth"  # of the section: its messages, files and keys
    baseline = "none"  # the variant the others are measured against
    small_min_ratio = SMALL_MIN_RATIO
    big_min_ratio = BIG_MIN_RATIO
    small_targets: frozenset[str] = frozenset(TARGETED)
    big_variants: tuple[str, ...] = BIG_VARIANTS
    big_targets: frozenset[str] = frozenset({"tls"})
    # The small cells' operations, and their payload (small_payload).
    small_ops: tuple[str, ...] = ("put", "get")
    title = "Authentication: each variant against none (4 KiB) or plaintext (big object)"

    def setup(self) -> None:
        client = self.args.small_client
        self.mechanism = "aio" if client == "auto" else client
        self._gateways: dict[str, procs.Server] = {}
        self._variants: dict[str, Variant] = {}
        self._small_keys: dict[str, list[str]] = {}
        self._driver = psutil.Process()

    def make_variants(self) -> list[Variant]:
        return variants(make_material(self.data_dir / "auth-pki"))

    def run(self) -> None:
        self._variants = {variant.name: variant for variant in self.make_variants()}
        print(f"{self.name}: starting one gateway per variant...", flush=True)
        try:
            for variant in self._variants.values():
                self._gateways[variant.name] = self._start(variant)
            for variant in self._variants.values():
                procs.wait_ready(
                    self._gateways[variant.name], self.options, 30.0, variant.credentials
                )
            self._small()
            self._big()
        finally:
            for gateway in self._gateways.values():
                self.processes.stop(gateway.process)
        self.notes.append(self.describe())

    def setup_note(self) -> str:
        """How the variants differ, for the section's note."""
        return (
            "auth: one gateway per variant (local backend), all up at once, each cell run on "
            "every variant in turn; none and JWT over plaintext gRPC, TLS and mTLS with trustme "
            "certificates (mTLS: client certificate, its CN the principal), JWT: RS256 bearer "
            "token verified against a JWKS file, JWT + policy: plus a policy granting every "
            "authenticated caller everything"
        )

    def describe(self) -> str:
        """The section's note: how it was run."""
        return (
            self.setup_note()
            + f"; small cells: {self.mechanism} client, the small-object concurrencies; "
            "CPU per op or MiB: the gateway's and this driver's "
            f"user+sys time, warm-up included; small cells: --small-ops and --small-seconds split "
            f"into {SMALL_ROUNDS * self.args.repeat} rounds, the variants in turn (rotating); "
            f"big: best of {self.args.repeat}, alternating; CPU ratio: the baseline's gateway + "
            "client CPU per op or MiB over the variant's (the throughput ratio where both ends "
            "share the same busy cores; other work moves it less than throughput); load: the "
            "1-minute load average as the run began (a small cell: mean over its rounds)"
        )

    def _start(self, variant: Variant) -> procs.Server:
        label = variant.name.replace("+", "-")
        return servers.start_gateway(
            self.processes,
            self.data_dir / f"gateway-{self.name}-{label}.log",
            {
                **variant.env,
                "STORAGE_BACKEND": "local",
                "STORAGE_BASE_PATH": str(self.data_dir / f"{self.name}-{label}"),
            },
            self.args.chunk_size,
            self.args.server_env,
            name=f"gateway ({variant.label})",
        )

    def _measure(self, name: str, fn: Callable[[], float]) -> tuple[float, float, float, float]:
        """(what fn returned, gateway CPU s, driver CPU s, the 1-minute load average
        as it began) over one call of fn."""
        gateway = self._gateways[name]
        if gateway.process.poll() is not None:
            raise RuntimeError(f"{gateway.name} exited:\n{gateway.log_tail()}")
        process = psutil.Process(gateway.pid)
        load = os.getloadavg()[0]
        cpu, own = sum(process.cpu_times()[:2]), sum(self._driver.cpu_times()[:2])
        value = fn()
        cpu = sum(process.cpu_times()[:2]) - cpu
        own = sum(self._driver.cpu_times()[:2]) - own
        return value, cpu, own, load

    def _best(self, runs: list[_Run]) -> _Run:
        return max(runs, key=lambda run: run.rate)

    def _add(
        self, workload: str, unit: str, best: dict[str, _Run], targets: frozenset[str]
    ) -> None:
        baseline, baseline_cpu = best[self.baseline].rate, best[self.baseline].cpu
        min_ratio = self.small_min_ratio if unit == "ops/s" else self.big_min_ratio
        for name, run in best.items():
            self.rows.append(
                AuthRow(
                    workload,
                    self._variants[name].label,
                    unit,
                    run.rate,
                    baseline,
                    run.gateway_cpu_s,
                    run.client_cpu_s,
                    run.amount,
                    min_ratio if name in targets else None,
                    baseline_cpu,
                    run.load,
                )
            )
            row = self.rows[-1]
            print(
                f"  {workload:<20} {self._variants[name].label:<13} "
                f"{run.rate:>10,.1f} {unit}   {row.ratio:5.2f}x   gateway "
                f"{row.per_unit(run.gateway_cpu_s)}   client "
                f"{row.per_unit(run.client_cpu_s)}   CPU ratio {row.cpu_ratio:.2f}x   "
                f"load {run.load:.1f}",
                flush=True,
            )

    # 4 KiB Put and Get.

    def _cell(self, name: str, op: str, concurrency: int, max_ops: int, seconds: float) -> _Round:
        variant = self._variants[name]
        payload = self.small_payload(name)
        keys = self._small_keys.setdefault(name, [])
        prefix = f"bench/{self.name}/{name}-c{concurrency}-{op}-{len(keys)}"
        if op != "put" and not keys:
            raise RuntimeError(f"no objects stored on {variant.label} to get")
        key, warm_key = small.cell_keys(op, prefix, keys)
        cell = small.Cell(
            "gateway",
            self._gateways[name].address,
            self.options,
            op,
            concurrency,
            max_ops,
            seconds,
            key,
            warm_key,
            variant.credentials,
            variant.metadata,
        )
        results: list[small.CellResult] = []

        def once() -> float:
            try:
                results.append(small.run(self.mechanism, cell, payload))
            except grpc.RpcError as error:
                log = self._gateways[name].log_tail()
                raise RuntimeError(
                    f"{op} c={concurrency} on {variant.label}: {error}\n{log}"
                ) from None
            return results[0].seconds

        timed, gateway_cpu, client_cpu, load = self._measure(name, once)
        ops = results[0].ops
        if op == "put":
            keys += [key(n) for n in range(ops)]
        warm_ops = 1 + max(16, concurrency)  # the cell's untimed warm-up, in the CPU figures
        return _Round(ops, timed, gateway_cpu, client_cpu, ops + warm_ops, load)

    def small_payload(self, variant: str) -> small.Payload:
        """The object every small Put of variant stores: random bytes of --small-size."""
        return small.Payload(*data.small_payload(self.args.small_size))

    def _small(self) -> None:
        """Each cell in rounds: every variant in turn, the order rotating, so
        that the machine's other work falls on all of them alike."""
        size = human_size(self.args.small_size)
        names = list(self._variants)
        rounds = SMALL_ROUNDS * self.args.repeat
        max_ops = max(1, self.args.small_ops // rounds)
        seconds = self.args.small_seconds / rounds
        for op in self.small_ops:
            for concurrency in self.args.concurrency:
                runs: dict[str, list[_Round]] = {name: [] for name in names}
                what = f"{op} {size} c={concurrency}"
                try:
                    for round_ in range(rounds):
                        shift = round_ % len(names)
                        for name in names[shift:] + names[:shift]:
                            runs[name].append(self._cell(name, op, concurrency, max_ops, seconds))
                except RuntimeError as error:  # one cell lost, not the whole section
                    self.failed.append(what)
                    self.notes.append(f"{self.name}: {what} FAILED: {error}")
                    print(f"  {what}: FAILED: {error}", flush=True)
                    continue
                totals = {name: _total(runs[name]) for name in names}
                self._add(what, "ops/s", totals, self.small_targets)

    # A big object over TLS against plaintext.

    def _channel(self, name: str) -> grpc.Channel:
        address, credentials = self._gateways[name].address, self._variants[name].credentials
        if credentials is None:
            return grpc.insecure_channel(address, options=self.options)
        return grpc.secure_channel(address, credentials, options=self.options)

    def _big(self) -> None:
        if not self.big_variants:
            return
        size = self.args.size
        bigdata = data.BigData(self.args.chunk_size)
        print(f"{self.name}: computing checksums of {human_size(size)} (untimed)...", flush=True)
        obj = bigdata.prepare(size)
        warm = bigdata.prepare(min(size, WARM_UP_BYTES))
        big_variants = self.big_variants
        channels = {name: self._channel(name) for name in big_variants}
        try:
            for channel in channels.values():  # untimed: connection, windows, TLS session
                big.gateway_put(channel, bigdata, warm, f"bench/{self.name}/warm")
                big.gateway_get(channel, f"bench/{self.name}/warm", warm.size)
            key = f"bench/{self.name}/big"
            transfers: dict[str, Callable[[grpc.Channel], object]] = {
                "put": lambda channel: big.gateway_put(channel, bigdata, obj, key),
                "get": lambda channel: big.gateway_get(channel, key, size),
            }
            for op, transfer in transfers.items():
                runs: dict[str, list[_Run]] = {name: [] for name in big_variants}
                for repeat in range(self.args.repeat):
                    order = big_variants if repeat % 2 == 0 else big_variants[::-1]
                    for name in order:
                        runs[name].append(self._transfer(name, channels[name], transfer, size))
                best = {name: self._best(runs[name]) for name in big_variants}
                self._add(f"{op} {human_size(size)}", "MiB/s", best, self.big_targets)
        finally:
            for channel in channels.values():
                channel.close()

    def _transfer(
        self,
        name: str,
        channel: grpc.Channel,
        transfer: Callable[[grpc.Channel], object],
        size: int,
    ) -> _Run:
        def once() -> float:
            started = time.perf_counter()
            transfer(channel)
            return size / MIB / (time.perf_counter() - started)

        rate, gateway_cpu, client_cpu, load = self._measure(name, once)
        return _Run(rate, gateway_cpu, client_cpu, size / MIB, load)

    # Results.

    def render(self) -> str:
        lines = [
            "| workload | variant | throughput | ratio | target | gateway CPU | client CPU "
            "| CPU ratio | load |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            rate = f"{row.rate:,.0f} ops/s" if row.unit == "ops/s" else f"{row.rate:,.1f} MiB/s"
            target = (
                "-"
                if row.min_ratio is None
                else f"{'met' if row.met else 'MISSED'} (>= {row.min_ratio}x)"
            )
            lines.append(
                f"| {row.workload} | {row.variant} | {rate} | {row.ratio:.2f}x | {target} | "
                f"{row.per_unit(row.gateway_cpu_s)} | {row.per_unit(row.client_cpu_s)} | "
                f"{row.cpu_ratio:.2f}x | {row.load:.1f} |"
            )
        return self.title + "\n\n" + "\n".join(lines)

    def all_met(self) -> bool:
        return not self.failed and all(row.met for row in self.rows)

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {**asdict(row), "ratio": row.ratio, "met": row.met, "cpu_ratio": row.cpu_ratio}
            for row in self.rows
        ]
