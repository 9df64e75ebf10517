"""The scan section: what malware scanning costs a big Put.

One gateway process (local backend) with two buckets: `plain`, and
`scanned`, whose writes stream to a real clamd (tests/clamd_server.py: the
custom EICAR database, one pass over a stream, SINGLE_PASS_CONFIG; clamd's
cost per byte is its matchers stepping through every byte) beside the disk,
land at a pending key and are renamed to their key on the clean verdict.
Puts of --size to each, interleaved (on, off, off, on, ...: --repeat rounds,
at least 2, each round a different object: a clamd with its clean cache on
answers a stream it has seen by its MD5), the best time of each
kept; the CPU of the gateway (psutil) and of clamd (/proc/PID/stat) over
each Put, per GiB. Target: scanned at >= 0.8x the plain Put's MiB/s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil

from bench import big, procs, servers
from bench.data import BigData, BigObject
from bench.report import MIB, human_size
from bench.section import Section
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.clamd_server import ClamdServer

MIN_RATIO = 0.8
GIB = 1024**3
VARIANTS = ("off", "on")
BUCKET = {"off": "plain", "on": "scanned"}


@dataclass(frozen=True)
class ScanRow:
    variant: str  # "off": the plain bucket; "on": the scanning one
    size: int
    seconds: float  # the best Put
    gateway_cpu_s: float  # over that Put
    clamd_cpu_s: float

    def per_gib(self, seconds: float) -> float:
        return seconds / (self.size / GIB)


def clamd_cpu_seconds(pid: int) -> float:
    """clamd's user + system CPU so far (/proc/PID/stat: utime, stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def put_messages(data: BigData, obj: BigObject, bucket: str, key: str) -> Iterator[bytes]:
    """bench.data's Put stream, to bucket."""
    yield pb.PutRequest(spec=pb.PutSpec(bucket=bucket, key=key, size=obj.size)).SerializeToString()
    for index, crc in enumerate(obj.chunk_crcs):
        yield data.data_message(index, obj.size, crc)
    last = pb.PutRequest(write_offset=obj.size, finish_write=True)
    last.object_checksums.crc32c = obj.crc32c
    last.object_checksums.sha256 = obj.sha256
    yield last.SerializeToString()


class ScanSection(Section[ScanRow]):
    name = "scan"  # of its JSON file

    def setup(self) -> None:
        self.data = BigData(self.args.chunk_size)

    def run(self) -> None:
        if not ClamdServer.available():
            self.notes.append("scan skipped: clamd is not installed (clamav-daemon)")
            return
        with ClamdServer() as clamd:
            gateway = self._start(clamd)
            try:
                self._measure(gateway, clamd)
            finally:
                self.processes.stop(gateway.process)
        self.notes.append(
            "scan: one gateway (local backend), a Put of the same pre-encoded chunks to a plain "
            "bucket and to a scanning one (clamd over its unix socket, custom EICAR database, "
            "one pass: parsers, heuristics and cache off; "
            "pending key, then a rename), interleaved, best of "
            f"{self._rounds()} each; CPU over the best Put of the gateway (psutil) and of clamd "
            f"(/proc/PID/stat); target scanned >= {MIN_RATIO}x plain MiB/s"
        )

    def _rounds(self) -> int:
        return max(2, int(self.args.repeat))

    def _start(self, clamd: ClamdServer) -> procs.Server:
        root = self.data_dir / "scan"
        root.mkdir(parents=True, exist_ok=True)
        config = root / "buckets.toml"
        config.write_text(
            "default_bucket = 'plain'\n"
            f"[buckets.plain]\nbackend = 'local'\npath = '{root / 'plain'}'\n"
            f"[buckets.scanned]\nbackend = 'local'\npath = '{root / 'scanned'}'\n"
            f"[buckets.scanned.scan]\nclamd = '{clamd.unix_address}'\n"
        )
        gateway = servers.start_gateway(
            self.processes,
            self.data_dir / "gateway-scan.log",
            {"GATEWAY_CONFIG": str(config), "STORAGE_BASE_PATH": str(root)},
            self.args.chunk_size,
            self.args.server_env,
            name="gateway (scan)",
        )
        procs.wait_ready(gateway, self.options)
        return gateway

    def _measure(self, gateway: procs.Server, clamd: ClamdServer) -> None:
        best: dict[str, ScanRow] = {}
        server = psutil.Process(gateway.pid)
        with grpc.insecure_channel(gateway.address, options=self.options) as channel:
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            for run in range(self._rounds()):
                # Another object each round: clamd answers a stream it scanned
                # before from its cache (by MD5), which uploads seldom repeat.
                size = self.args.size - run * 4096
                print(f"scan: computing checksums of {human_size(size)} (untimed)...")
                obj = self.data.prepare(size)
                for variant in VARIANTS if run % 2 else reversed(VARIANTS):
                    bucket, key = BUCKET[variant], f"bench-scan-{run}"
                    cpu, clamd_cpu = server.cpu_times(), clamd_cpu_seconds(clamd.pid)
                    begin = time.perf_counter()
                    self._put(channel, obj, bucket, key)
                    seconds = time.perf_counter() - begin
                    after = server.cpu_times()
                    row = ScanRow(
                        variant,
                        obj.size,
                        seconds,
                        (after.user + after.system) - (cpu.user + cpu.system),
                        clamd_cpu_seconds(clamd.pid) - clamd_cpu,
                    )
                    print(
                        f"  scan {variant}: {obj.size / MIB / seconds:.1f} MiB/s, gateway "
                        f"{row.per_gib(row.gateway_cpu_s):.2f} CPU s/GiB, clamd "
                        f"{row.per_gib(row.clamd_cpu_s):.2f} CPU s/GiB",
                        flush=True,
                    )
                    if variant not in best or seconds < best[variant].seconds:
                        best[variant] = row
                    stub.Delete(pb.DeleteRequest(bucket=bucket, key=key))
        self.rows = [best[variant] for variant in VARIANTS]

    def _put(self, channel: grpc.Channel, obj: BigObject, bucket: str, key: str) -> None:
        call = channel.stream_unary(
            big.PUT_METHOD,
            request_serializer=None,
            response_deserializer=pb.PutResponse.FromString,
        )
        response: pb.PutResponse = call(
            put_messages(self.data, obj, bucket, key), timeout=big.TIMEOUT
        )
        if response.object.sha256 != obj.sha256:
            raise RuntimeError(f"the Put of {key!r} to {bucket} stored other bytes")

    def ratio(self) -> float | None:
        rows = {row.variant: row for row in self.rows}
        if set(rows) != set(VARIANTS):
            return None
        return rows["off"].seconds / rows["on"].seconds

    def render(self) -> str:
        lines = [
            "| scanning | size | Put | gateway CPU | clamd CPU | ratio | target |",
            "|---|---|---|---|---|---|---|",
        ]
        ratio = self.ratio()
        for row in self.rows:
            verdict = ""
            if row.variant == "on" and ratio is not None:
                verdict = f"{'met' if ratio >= MIN_RATIO else 'MISSED'} (>= {MIN_RATIO}x)"
            lines.append(
                f"| {row.variant} | {human_size(row.size)} | "
                f"{row.size / MIB / row.seconds:.1f} MiB/s | "
                f"{row.per_gib(row.gateway_cpu_s):.2f} s/GiB | "
                f"{row.per_gib(row.clamd_cpu_s):.2f} s/GiB | "
                f"{'' if row.variant == 'off' or ratio is None else f'{ratio:.2f}x'} | {verdict} |"
            )
        return "Malware scanning (clamd) on a big Put, against none\n\n" + "\n".join(lines)

    def all_met(self) -> bool:
        ratio = self.ratio()
        return not self.failed and (ratio is None or ratio >= MIN_RATIO)

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {
                "scanning": row.variant,
                "size": row.size,
                "seconds": row.seconds,
                "gateway_cpu_seconds": row.gateway_cpu_s,
                "clamd_cpu_seconds": row.clamd_cpu_s,
            }
            for row in self.rows
        ]
