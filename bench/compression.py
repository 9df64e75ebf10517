"""The compression section: what a compressed bucket saves and costs on a big
JSON log.

One gateway process (local backend) with two buckets: `plain`, and `zstd`,
whose [buckets.NAME.compression] table stores JSON compressed (zstd level 3,
1 MiB frames, seekable format). A JSON-lines log of min(--size, 256 MiB)
(made once, untimed: records with a counter, levels, paths, latencies, user
names and a random trace id each) is Put to each bucket with the Python client
(put_bytes), Got back whole, and sent again as a resumable upload (put_file),
interleaved (--repeat rounds, at least 2), the best time of each kept; the
stored size is the bucket's files on disk; CPU of the gateway (psutil) and of
the client (this process) over each call, per GiB of the original. No target:
the figures say what compression costs.
"""

from __future__ import annotations

import io
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench import procs, servers
from bench.report import MIB, human_size
from bench.section import Section
from storagegw import Client, RetryPolicy

GIB = 1024**3
MAX_SIZE = 256 * MIB
VARIANTS = ("plain", "zstd")
OPS = ("put", "get", "resumable-put")


def json_log(size: int, seed: int = 23) -> bytes:
    """size bytes of a JSON-lines access log."""
    rng = random.Random(seed)
    levels = (b"info", b"info", b"info", b"warn", b"error")
    paths = [
        b"/api/v1/%s/%d" % (rng.choice([b"items", b"users", b"orders"]), i) for i in range(5000)
    ]
    line = (
        b'{"ts":%d,"level":"%s","method":"GET","path":"%s","status":%d,"ms":%d,'
        b'"user":"user-%d","trace":"%016x"}\n'
    )
    parts: list[bytes] = []
    total = index = 0
    while total < size:
        record = line % (
            1_700_000_000_000 + index * 7,
            rng.choice(levels),
            rng.choice(paths),
            rng.choice((200, 200, 200, 201, 304, 404, 500)),
            rng.randrange(1, 2000),
            rng.randrange(10_000),
            rng.getrandbits(64),
        )
        parts.append(record)
        total += len(record)
        index += 1
    return b"".join(parts)[:size]


@dataclass(frozen=True)
class CompressionRow:
    variant: str
    op: str
    size: int
    stored: int  # bytes the bucket's files hold after the Put
    seconds: float  # the best call
    gateway_cpu_s: float  # over that call
    client_cpu_s: float

    def per_gib(self, seconds: float) -> float:
        return seconds / (self.size / GIB)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _stored(root: Path) -> int:
    return sum(path.stat().st_size for path in (root / "objects").rglob("*") if path.is_file())


class CompressionSection(Section[CompressionRow]):
    name = "compression"  # of its JSON file

    def run(self) -> None:
        root = self.data_dir / "compression"
        root.mkdir(parents=True, exist_ok=True)
        config = root / "buckets.toml"
        config.write_text(
            "default_bucket = 'plain'\n"
            f"[buckets.plain]\nbackend = 'local'\npath = '{root / 'plain'}'\n"
            f"[buckets.zstd]\nbackend = 'local'\npath = '{root / 'zstd'}'\n"
            "[buckets.zstd.compression]\ntypes = ['application/x-ndjson']\n"
        )
        gateway = servers.start_gateway(
            self.processes,
            self.data_dir / "gateway-compression.log",
            {"GATEWAY_CONFIG": str(config), "STORAGE_BASE_PATH": str(root)},
            self.args.chunk_size,
            self.args.server_env,
            name="gateway (compression)",
        )
        procs.wait_ready(gateway, self.options)
        try:
            self._measure(gateway, root)
        finally:
            self.processes.stop(gateway.process)
        self.notes.append(
            "compression: one gateway (local backend), a JSON-lines log Put with the Python "
            "client to a plain bucket and to a compressed one (zstd level 3, 1 MiB frames, "
            "seekable), then Got back whole, then sent again as a resumable upload; "
            f"interleaved, best of {self._rounds()} each; "
            "stored: the bucket's files on disk; CPU over the best call of the gateway (psutil) "
            "and of the client (this process), per GiB of the original; no target"
        )

    def _rounds(self) -> int:
        return max(2, int(self.args.repeat))

    def _measure(self, gateway: procs.Server, root: Path) -> None:
        size = min(int(self.args.size), MAX_SIZE)
        print(f"compression: making a {human_size(size)} JSON log (untimed)...", flush=True)
        data = json_log(size)
        best: dict[tuple[str, str], CompressionRow] = {}
        server, client_process = psutil.Process(gateway.pid), psutil.Process(os.getpid())
        with Client(gateway.address, timeout=600, retry=RetryPolicy.no_retry()) as client:
            for run in range(self._rounds()):
                for variant in VARIANTS if run % 2 else reversed(VARIANTS):
                    key = f"bench-log-{run}.json"
                    for op in OPS:
                        cpu, mine = _cpu(server), _cpu(client_process)
                        begin = time.perf_counter()
                        if op == "put":
                            info = client.put_bytes(
                                key, data, bucket=variant, content_type="application/x-ndjson"
                            )
                            if info.size != size:
                                raise RuntimeError(f"{variant}: the Put stored {info.size} bytes")
                        elif op == "resumable-put":
                            # put_file's path for a file over 8 MiB: a
                            # resumable upload, compressed frame by frame.
                            info = client.put_file(
                                key,
                                io.BytesIO(data),
                                bucket=variant,
                                content_type="application/x-ndjson",
                                size=size,
                                resumable=True,
                            )
                            if info.size != size:
                                raise RuntimeError(
                                    f"{variant}: the upload stored {info.size} bytes"
                                )
                        elif client.get_bytes(key, bucket=variant) != data:
                            raise RuntimeError(f"{variant}: the Get gave other bytes")
                        seconds = time.perf_counter() - begin
                        row = CompressionRow(
                            variant,
                            op,
                            size,
                            _stored(root / variant),
                            seconds,
                            _cpu(server) - cpu,
                            _cpu(client_process) - mine,
                        )
                        print(
                            f"  compression {variant} {op}: {size / MIB / seconds:.1f} MiB/s, "
                            f"stored {human_size(row.stored)}, gateway "
                            f"{row.per_gib(row.gateway_cpu_s):.2f} CPU s/GiB",
                            flush=True,
                        )
                        if (variant, op) not in best or seconds < best[variant, op].seconds:
                            best[variant, op] = row
                    client.delete(key, bucket=variant)
        self.rows = [best[variant, op] for variant in VARIANTS for op in OPS]

    def _row(self, variant: str, op: str) -> CompressionRow | None:
        return next((r for r in self.rows if (r.variant, r.op) == (variant, op)), None)

    def render(self) -> str:
        lines = [
            "| bucket | op | size | stored | ratio | MiB/s | vs plain | gateway CPU | client CPU |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            plain = self._row("plain", row.op)
            speed = "" if plain is None else f"{plain.seconds / row.seconds:.2f}x"
            lines.append(
                f"| {row.variant} | {row.op} | {human_size(row.size)} | "
                f"{human_size(row.stored)} | {row.size / max(row.stored, 1):.2f}x | "
                f"{row.size / MIB / row.seconds:.1f} | {speed} | "
                f"{row.per_gib(row.gateway_cpu_s):.2f} s/GiB | "
                f"{row.per_gib(row.client_cpu_s):.2f} s/GiB |"
            )
        return "Compressed bucket (zstd) against a plain one, JSON log\n\n" + "\n".join(lines)

    def all_met(self) -> bool:
        return not self.failed

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {
                "bucket": row.variant,
                "op": row.op,
                "size": row.size,
                "stored": row.stored,
                "seconds": row.seconds,
                "gateway_cpu_seconds": row.gateway_cpu_s,
                "client_cpu_seconds": row.client_cpu_s,
            }
            for row in self.rows
        ]
