"""Small objects against GATEWAY_WORKERS=N, for each N of --workers (1,2).

One gateway per worker count (local backend), all up at once; each cell (4
KiB Put, then Get of what the Put stored, at each small-object concurrency)
runs on every gateway in turn. The client is a grpc.aio driver spreading
the cell's concurrency over CONNECTIONS channels of their own (local
subchannel pools): one channel is one connection, which one worker serves
for its whole life, so a single channel could never reach a second worker.
Every gateway gets the same client. CPU: the supervisor's and its workers'
user+sys time per op.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from typing import Any

import grpc
import psutil

from bench import data, procs, servers, small
from bench.section import Section

CONNECTIONS = 8
READY_WAIT_S = 60.0


def _gateway_cpu(pid: int) -> float:
    """User+sys seconds of process pid and its children (its workers)."""
    parent = psutil.Process(pid)
    total = 0.0
    for process in (parent, *parent.children()):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(process.cpu_times()[:2])
    return total


def _wait_workers(server: procs.Server, count: int, http_port: int) -> None:
    """Until count workers listen on the signed-URL port, the last thing a
    worker starts (count 1: the process itself)."""
    deadline = time.monotonic() + READY_WAIT_S
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log_tail()}")
        parent = psutil.Process(server.pid)
        candidates = parent.children() if count > 1 else [parent]
        listening = 0
        for process in candidates:
            try:
                connections = process.net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            listening += any(
                c.status == psutil.CONN_LISTEN and c.laddr.port == http_port for c in connections
            )
        if listening >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: {listening} of {count} workers listening")
        time.sleep(0.1)


async def _cell(
    address: str,
    options: list[tuple[str, Any]],
    op: str,
    concurrency: int,
    keys: list[str],
    payload: small.Payload,
    max_ops: int,
    seconds: float,
) -> tuple[int, float]:
    """(ops, seconds) of one cell, after an untimed warm-up call per channel."""
    own = [*options, ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(address, options=own) for _ in range(CONNECTIONS)]
    try:
        calls = [small.aio_ops("gateway", channel, payload)[op] for channel in channels]
        key = (lambda n: keys[n % len(keys)]) if op == "get" else (lambda n: keys[0] + f"/{n:07d}")
        for n, call in enumerate(calls):
            await call(key(n) if op == "get" else keys[0] + f"/warm-{n}")
        counter = iter(range(max_ops))
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(slot: int) -> int:
            call, done = calls[slot % CONNECTIONS], 0
            for number in counter:
                if time.perf_counter() > deadline:
                    break
                await call(key(number))
                done += 1
            return done

        done = await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
        return sum(done), time.perf_counter() - started
    finally:
        for channel in channels:
            await channel.close()


def add_arguments(parser: argparse.ArgumentParser, int_list: Any) -> None:
    parser.add_argument(
        "--workers",
        type=int_list,
        default=[],
        help="with small in --only: also the small-object cells against one gateway per "
        "GATEWAY_WORKERS value, side by side (e.g. 1,2)",
    )


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.workers) and "small" in args.only


class WorkersSection(Section[dict[str, Any]]):
    name = "workers"

    def run(self) -> None:
        counts: list[int] = self.args.workers
        print(f"workers: starting one gateway per worker count {counts}...", flush=True)
        gateways: dict[int, procs.Server] = {}
        try:
            for count in counts:
                http_port = procs.free_port()
                gateways[count] = servers.start_gateway(
                    self.processes,
                    self.data_dir / f"gateway-workers-{count}.log",
                    {
                        "STORAGE_BACKEND": "local",
                        "STORAGE_BASE_PATH": str(self.data_dir / f"workers-{count}"),
                        "GATEWAY_WORKERS": str(count),
                    },
                    self.args.chunk_size,
                    self.args.server_env,
                    (procs.free_port(), http_port),
                    name=f"gateway ({count} workers)",
                )
                _wait_workers(gateways[count], count, http_port)
            self._cells(gateways)
        finally:
            for gateway in gateways.values():
                self.processes.stop(gateway.process, grace=10.0)
        self.notes.append(
            f"workers: one gateway per GATEWAY_WORKERS value (local backend), up at once, each "
            f"cell on each in turn; aio client over {CONNECTIONS} connections of its own; CPU: "
            "the supervisor's and its workers' user+sys time per op; the client shares the cores"
        )

    def _cells(self, gateways: dict[int, procs.Server]) -> None:
        payload = small.Payload(*data.small_payload(self.args.small_size))
        size = f"{self.args.small_size // 1024} KiB"
        for concurrency in self.args.concurrency:
            stored: dict[int, list[str]] = {}
            for op in ("put", "get"):
                for count, gateway in gateways.items():
                    prefix = f"bench/workers/c{concurrency}"
                    keys = stored.get(count, []) if op == "get" else [prefix]
                    cpu = _gateway_cpu(gateway.pid)
                    ops, seconds = asyncio.run(
                        _cell(
                            gateway.address,
                            self.options,
                            op,
                            concurrency,
                            keys,
                            payload,
                            self.args.small_ops,
                            self.args.small_seconds,
                        )
                    )
                    cpu = _gateway_cpu(gateway.pid) - cpu
                    if op == "put":
                        stored[count] = [f"{prefix}/{n:07d}" for n in range(ops)]
                    rate = ops / seconds if seconds else 0.0
                    row = {
                        "workload": f"{op} {size} c={concurrency}",
                        "workers": count,
                        "ops_per_s": round(rate, 1),
                        "gateway_cpu_us_per_op": round(cpu / ops * 1e6) if ops else None,
                        "load": round(os.getloadavg()[0], 2),
                    }
                    self.rows.append(row)
                    print(
                        f"  {row['workload']:<20} workers={count}: {rate:>9,.0f} ops/s, "
                        f"gateway {row['gateway_cpu_us_per_op']} us/op",
                        flush=True,
                    )

    def render(self) -> str:
        lines = ["Workers: small objects, GATEWAY_WORKERS side by side", ""]
        lines.append(f"{'workload':<20} {'workers':>7} {'ops/s':>10} {'gw CPU/op':>12}")
        for row in self.rows:
            cpu = row["gateway_cpu_us_per_op"]
            lines.append(
                f"{row['workload']:<20} {row['workers']:>7} {row['ops_per_s']:>10,.0f} "
                f"{'-' if cpu is None else f'{cpu} us':>12}"
            )
        return "\n".join([*lines, "", *self.notes])

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "notes": self.notes}

    def all_met(self) -> bool:
        return True  # figures to read, no targets
