"""The dedup section: what a dedup bucket saves and costs.

One gateway process (local backend) with two buckets on the same disk:
`plain`, and `dedup` ([buckets.dedup] dedup = true). First, --dedup-count
Puts (default 1,000) of the same --dedup-file-size object (default 1 MiB)
to each, 8 at a time, under different keys: the time, and the bytes on disk
of each bucket's directory after (st_blocks); then the same Puts to the
dedup bucket again, each promising its SHA-256 up front (no byte stored). Then a Put and a Get of
--size (default 1 GiB) to each, interleaved (dedup, plain, plain, dedup,
...: --repeat rounds, at least 2, each round a different object, so that
the dedup bucket stores new bytes), the best time of each kept. Target: the
dedup bucket's big Put and Get at >= 0.9x the plain bucket's MiB/s.
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench import big, procs, servers
from bench.data import BigData, BigObject
from bench.report import MIB, human_size
from bench.scan import put_messages
from bench.section import Section
from storagegw import Client
from storagegw.v1 import storage_pb2 as pb

MIN_RATIO = 0.9
VARIANTS = ("plain", "dedup")
THREADS = 8


@dataclass(frozen=True)
class ManyRow:
    bucket: str
    count: int
    size: int
    seconds: float
    disk_bytes: int


@dataclass(frozen=True)
class BigRow:
    bucket: str
    size: int
    put_seconds: float
    get_seconds: float


def disk_bytes(root: Path) -> int:
    """What the files under root take on disk (allocated blocks)."""
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total


class DedupSection(Section[BigRow]):
    name = "dedup"  # of its JSON file

    def setup(self) -> None:
        self.data = BigData(self.args.chunk_size)
        self.many: list[ManyRow] = []
        self.root = self.data_dir / "dedup"

    def run(self) -> None:
        gateway = self._start()
        try:
            self._many(gateway)
            self._big(gateway)
        finally:
            self.processes.stop(gateway.process)
        self.notes.append(
            f"dedup: one gateway (local backend), buckets plain and dedup on one disk; "
            f"{self._count()} Puts of one {human_size(self._file_size())} object to each, "
            f"{THREADS} at a time, bytes on disk after (st_blocks); a big Put and Get to each, "
            f"interleaved, best of {self._rounds()}; target dedup >= {MIN_RATIO}x plain MiB/s"
        )

    def _count(self) -> int:
        return int(getattr(self.args, "dedup_count", 1000))

    def _file_size(self) -> int:
        return int(getattr(self.args, "dedup_file_size", MIB))

    def _rounds(self) -> int:
        return max(2, int(self.args.repeat))

    def _start(self) -> procs.Server:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "buckets.toml"
        config.write_text(
            "default_bucket = 'plain'\n"
            f"[buckets.plain]\nbackend = 'local'\npath = '{self.root / 'plain'}'\n"
            f"[buckets.dedup]\nbackend = 'local'\npath = '{self.root / 'dedup'}'\ndedup = true\n"
        )
        gateway = servers.start_gateway(
            self.processes,
            self.data_dir / "gateway-dedup.log",
            {"GATEWAY_CONFIG": str(config), "STORAGE_BASE_PATH": str(self.root)},
            self.args.chunk_size,
            self.args.server_env,
            name="gateway (dedup)",
        )
        procs.wait_ready(gateway, self.options)
        return gateway

    def _many(self, gateway: procs.Server) -> None:
        payload = os.urandom(self._file_size())
        with Client(gateway.address) as client:
            # The last: each Put promises its SHA-256 up front (the client's
            # verify_sha256), so the dedup bucket stores none of its bytes.
            for bucket, promised in (("plain", False), ("dedup", False), ("dedup", True)):
                before = disk_bytes(self.root / bucket)
                begin = time.perf_counter()
                with ThreadPoolExecutor(THREADS) as pool:
                    keys = [f"many{int(promised)}/{i:05d}" for i in range(self._count())]
                    put = functools.partial(
                        client.put_bytes, data=payload, bucket=bucket, verify_sha256=promised
                    )
                    list(pool.map(put, keys))
                seconds = time.perf_counter() - begin
                used = disk_bytes(self.root / bucket) - before
                name = f"{bucket}, SHA-256 promised" if promised else bucket
                row = ManyRow(name, self._count(), len(payload), seconds, used)
                self.many.append(row)
                print(
                    f"  dedup many {bucket}: {row.count / seconds:.0f} Puts/s, "
                    f"{human_size(used)} on disk",
                    flush=True,
                )

    def _big(self, gateway: procs.Server) -> None:
        best: dict[str, BigRow] = {}
        with grpc.insecure_channel(gateway.address, options=self.options) as channel:
            for run in range(self._rounds()):
                size = self.args.size - run * 4096  # new bytes each round
                print(f"dedup: computing checksums of {human_size(size)} (untimed)...")
                obj = self.data.prepare(size)
                for bucket in VARIANTS if run % 2 else tuple(reversed(VARIANTS)):
                    key = f"big-{run}"
                    begin = time.perf_counter()
                    _put(channel, self.data, obj, bucket, key)
                    put_s = time.perf_counter() - begin
                    begin = time.perf_counter()
                    _get(channel, bucket, key, obj.size)
                    row = BigRow(bucket, obj.size, put_s, time.perf_counter() - begin)
                    print(
                        f"  dedup big {bucket}: Put {obj.size / MIB / row.put_seconds:.1f} MiB/s, "
                        f"Get {obj.size / MIB / row.get_seconds:.1f} MiB/s",
                        flush=True,
                    )
                    kept = best.get(bucket)
                    if kept is None:
                        best[bucket] = row
                    else:
                        best[bucket] = BigRow(
                            bucket,
                            row.size,
                            min(kept.put_seconds, row.put_seconds),
                            min(kept.get_seconds, row.get_seconds),
                        )
        self.rows = [best[bucket] for bucket in VARIANTS]

    def ratios(self) -> tuple[float, float] | None:
        rows = {row.bucket: row for row in self.rows}
        if set(rows) != set(VARIANTS):
            return None
        plain, dedup = rows["plain"], rows["dedup"]
        return plain.put_seconds / dedup.put_seconds, plain.get_seconds / dedup.get_seconds

    def render(self) -> str:
        lines = [
            "| bucket | Puts | object | time | Puts/s | on disk |",
            "|---|---|---|---|---|---|",
        ]
        for many in self.many:
            lines.append(
                f"| {many.bucket} | {many.count} | {human_size(many.size)} | "
                f"{many.seconds:.2f} s | {many.count / many.seconds:.0f} | "
                f"{human_size(many.disk_bytes)} |"
            )
        lines += [
            "",
            "| bucket | size | Put | Get | ratio (Put, Get) | target |",
            "|---|---|---|---|---|---|",
        ]
        ratios = self.ratios()
        for row in self.rows:
            ratio = verdict = ""
            if row.bucket == "dedup" and ratios is not None:
                ratio = f"{ratios[0]:.2f}x, {ratios[1]:.2f}x"
                met = min(ratios) >= MIN_RATIO
                verdict = f"{'met' if met else 'MISSED'} (>= {MIN_RATIO}x)"
            lines.append(
                f"| {row.bucket} | {human_size(row.size)} | "
                f"{row.size / MIB / row.put_seconds:.1f} MiB/s | "
                f"{row.size / MIB / row.get_seconds:.1f} MiB/s | {ratio} | {verdict} |"
            )
        return "Dedup bucket against a plain one (local backend)\n\n" + "\n".join(lines)

    def all_met(self) -> bool:
        ratios = self.ratios()
        return not self.failed and (ratios is None or min(ratios) >= MIN_RATIO)

    def as_json(self) -> dict[str, Any]:
        return {
            "many": [vars(row) for row in self.many],
            "big": [vars(row) for row in self.rows],
        }


def _put(channel: grpc.Channel, data: BigData, obj: BigObject, bucket: str, key: str) -> None:
    call = channel.stream_unary(
        big.PUT_METHOD, request_serializer=None, response_deserializer=pb.PutResponse.FromString
    )
    response: pb.PutResponse = call(put_messages(data, obj, bucket, key), timeout=big.TIMEOUT)
    if response.object.sha256 != obj.sha256:
        raise RuntimeError(f"the Put of {key!r} to {bucket} stored other bytes")


def _get(channel: grpc.Channel, bucket: str, key: str, size: int) -> None:
    call = channel.unary_stream(
        big.GET_METHOD,
        request_serializer=pb.GetRequest.SerializeToString,
        response_deserializer=pb.GetResponse.FromString,
    )
    total = 0
    for response in call(pb.GetRequest(bucket=bucket, key=key), timeout=big.TIMEOUT):
        total += len(response.chunk.content)
    if total != size:
        raise RuntimeError(f"Get of {key!r} from {bucket} gave {total} bytes, expected {size}")
