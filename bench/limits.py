"""The stream-limits section: what hostile or careless clients make the gateway hold.

One gateway process at its default limits (local backend). Its RSS is read
when idle; then two phases, each with the gateway's peak RSS during it and
its RSS once it ended (after the gateway's trim delay):

- idle streams: IDLE_STREAMS Put streams, each a spec and a IDLE_CHUNK chunk,
  then silence, over as many connections as HTTP/2's per-connection cap
  needs; held until every stream is either refused (TOO_MANY_STREAMS) or has
  its temp file, then cancelled;
- concurrent Puts: BIG_STREAMS Puts of BIG_SIZE at once (pre-encoded 1 MiB
  chunks with CRC32C), each checked by its size.

Targets (issue 10): peak <= 256 MiB with the idle streams; RSS back within
32 MiB of the idle RSS once the streams of each phase ended.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import psutil

from bench import procs, servers
from bench.report import MIB, human_size
from bench.section import Section
from gateway.config import load
from gateway.core.stream_limits import TRIM_DELAY_S
from gateway.domain.checksums import crc32c
from storagegw.v1 import storage_pb2 as pb

PUT = "/storagegw.v1.StorageService/Put"
IDLE_STREAMS = 2000
IDLE_CHUNK = 300 * 1024
BIG_STREAMS = 64
BIG_SIZE = 64 * MIB
BIG_CHUNK = MIB
PEAK_TARGET = 256 * MIB
AFTER_SLACK = 32 * MIB
# Channels to one target share a connection unless told otherwise.
_OWN_CONNECTION = ("grpc.use_local_subchannel_pool", 1)


@dataclass(frozen=True)
class Phase:
    name: str
    peak_rss: int
    after_rss: int
    seconds: float
    detail: str


class LimitsSection(Section[Phase]):
    """The gateway's RSS at its default limits; its rows are its two phases, in order."""

    name = "limits"  # of its JSON file
    title = "Stream limits: RSS of the gateway at its default limits (local backend)"

    def setup(self) -> None:
        self.root = self.data_dir / "limits"
        self.defaults = load({})
        self.idle_rss = 0

    def run(self) -> None:
        print("limits: starting the gateway at its default limits...", flush=True)
        gateway = servers.start_gateway(
            self.processes,
            self.root.with_suffix(".log"),
            {"STORAGE_BACKEND": "local", "STORAGE_BASE_PATH": str(self.root)},
            self.args.chunk_size,
            self.args.server_env,
            name="gateway (limits)",
        )
        try:
            procs.wait_ready(gateway, self.options)
            process = psutil.Process(gateway.pid)
            time.sleep(1.0)  # let start-up allocations settle before the baseline
            self.idle_rss = process.memory_info().rss
            print(f"  idle RSS {self.idle_rss / MIB:.0f} MiB", flush=True)
            for name, phase in (
                (f"{IDLE_STREAMS} idle Put streams", self._idle_streams),
                (f"{BIG_STREAMS} concurrent {human_size(BIG_SIZE)} Puts", self._big_puts),
            ):
                peak = procs.PeakRss(gateway.pid)
                peak.start()
                begin = time.perf_counter()
                detail = asyncio.run(phase(gateway.address))
                seconds = time.perf_counter() - begin
                peak_rss = peak.stop()
                # The gateway trims once it has had no stream for TRIM_DELAY_S.
                time.sleep(TRIM_DELAY_S + 2.0)
                after = process.memory_info().rss
                self.rows.append(Phase(name, peak_rss, after, seconds, detail))
                print(
                    f"  {name}: peak {peak_rss / MIB:.0f} MiB, after {after / MIB:.0f} MiB; "
                    f"{detail}",
                    flush=True,
                )
        except Exception as error:
            self.failed.append("limits")
            self.notes.append(f"limits FAILED: {error}\n{gateway.log_tail()}")
        finally:
            self.processes.stop(gateway.process)
        d = self.defaults
        self.notes.append(
            f"limits: defaults GATEWAY_MAX_STREAMS={d.max_streams}, "
            f"GATEWAY_MAX_STREAMS_PER_CONNECTION={d.max_streams_per_connection}, "
            f"GATEWAY_MAX_BUFFERED_BYTES={human_size(d.max_buffered_bytes)}, "
            f"GATEWAY_STREAM_IDLE_TIMEOUT={d.stream_idle_timeout:g} s; idle streams are "
            f"spec + {human_size(IDLE_CHUNK)} then silence, cancelled by the client once "
            "each was refused or had its temp file; after = RSS once the phase's streams "
            f"ended plus {TRIM_DELAY_S + 2:g} s"
        )

    def _channels(self, address: str, count: int) -> list[grpc.aio.Channel]:
        options = [*self.options, _OWN_CONNECTION]
        return [grpc.aio.insecure_channel(address, options=options) for _ in range(count)]

    async def _idle_streams(self, address: str) -> str:
        per_connection = self.defaults.max_streams_per_connection
        channels = self._channels(address, -(-IDLE_STREAMS // per_connection))
        quiet = asyncio.Event()
        chunk = pb.PutRequest(chunk=pb.ChecksummedData(content=os.urandom(IDLE_CHUNK)))

        async def messages(index: int) -> AsyncIterator[pb.PutRequest]:
            yield pb.PutRequest(spec=pb.PutSpec(key=f"bench-idle/{index}"))
            yield chunk
            await quiet.wait()

        calls = []
        for index in range(IDLE_STREAMS):
            put = channels[index % len(channels)].stream_unary(
                PUT,
                request_serializer=pb.PutRequest.SerializeToString,
                response_deserializer=pb.PutResponse.FromString,
            )
            calls.append(put(messages(index)))
        tmp = self.root / "default" / "tmp"

        def temp_files() -> int:
            return len(os.listdir(tmp)) if tmp.exists() else 0

        deadline = time.monotonic() + 120
        while sum(call.done() for call in calls) + temp_files() < IDLE_STREAMS:
            if time.monotonic() > deadline:
                raise RuntimeError("the idle streams were neither refused nor admitted in 120 s")
            await asyncio.sleep(0.05)  # polling the gateway's state
        refused = [call for call in calls if call.done()]
        codes = collections.Counter([(await call.code()).name for call in refused])
        held = temp_files()
        for call in calls:
            call.cancel()
        quiet.set()
        deadline = time.monotonic() + 60
        while temp_files():
            if time.monotonic() > deadline:
                raise RuntimeError("temp files left 60 s after the idle streams were cancelled")
            await asyncio.sleep(0.05)
        for channel in channels:
            await channel.close()
        return (
            f"{len(refused)} refused ({', '.join(f'{n} {c}' for c, n in codes.most_common())}), "
            f"{held} held with a temp file each"
        )

    async def _big_puts(self, address: str) -> str:
        channels = self._channels(address, 8)
        content = os.urandom(BIG_CHUNK)
        chunk = pb.PutRequest(
            chunk=pb.ChecksummedData(content=content, crc32c=crc32c(content))
        ).SerializeToString()
        finish = pb.PutRequest(finish_write=True).SerializeToString()

        async def messages(index: int) -> AsyncIterator[bytes]:
            spec = pb.PutSpec(key=f"bench-big/{index}", size=BIG_SIZE)
            yield pb.PutRequest(spec=spec).SerializeToString()
            for _ in range(BIG_SIZE // BIG_CHUNK):
                yield chunk
            yield finish

        async def put(index: int) -> int:
            call = channels[index % len(channels)].stream_unary(
                PUT, request_serializer=None, response_deserializer=pb.PutResponse.FromString
            )
            response: pb.PutResponse = await call(messages(index))
            return response.object.size

        try:
            sizes = await asyncio.gather(*(put(index) for index in range(BIG_STREAMS)))
        finally:
            for channel in channels:
                await channel.close()
        if any(size != BIG_SIZE for size in sizes):
            raise RuntimeError("a concurrent Put stored another size")
        return f"all {BIG_STREAMS} stored ({human_size(BIG_STREAMS * BIG_SIZE)} in all)"

    def checks(self) -> list[tuple[str, int, str, bool]]:
        """(what, bytes, target, met) for each figure with a target."""
        limit = self.idle_rss + AFTER_SLACK
        found = []
        for index, phase in enumerate(self.rows):
            if index == 0:
                found.append(
                    (
                        f"peak, {phase.name}",
                        phase.peak_rss,
                        f"<= {PEAK_TARGET // MIB} MiB",
                        phase.peak_rss <= PEAK_TARGET,
                    )
                )
            found.append(
                (
                    f"after {phase.name}",
                    phase.after_rss,
                    f"<= idle + {AFTER_SLACK // MIB} MiB ({limit / MIB:.0f} MiB)",
                    phase.after_rss <= limit,
                )
            )
        return found

    def render(self) -> str:
        lines = [
            f"{self.title}\n",
            f"idle RSS: {self.idle_rss / MIB:.0f} MiB\n",
            "| phase | peak RSS | RSS after | duration | outcome |",
            "|---|---|---|---|---|",
        ]
        for phase in self.rows:
            lines.append(
                f"| {phase.name} | {phase.peak_rss / MIB:.0f} MiB | "
                f"{phase.after_rss / MIB:.0f} MiB | {phase.seconds:.1f} s | {phase.detail} |"
            )
        lines += ["", "| target | value | target | met |", "|---|---|---|---|"]
        for what, value, target, met in self.checks():
            lines.append(
                f"| {what} | {value / MIB:.0f} MiB | {target} | {'met' if met else 'MISSED'} |"
            )
        return "\n".join(lines)

    def all_met(self) -> bool:
        return not self.failed and len(self.rows) == 2 and all(c[3] for c in self.checks())

    def as_json(self) -> dict[str, Any]:
        return {
            "idle_rss": self.idle_rss,
            "phases": [
                {
                    "name": p.name,
                    "peak_rss": p.peak_rss,
                    "after_rss": p.after_rss,
                    "seconds": p.seconds,
                    "detail": p.detail,
                }
                for p in self.rows
            ],
            "checks": [
                {"what": what, "bytes": value, "target": target, "met": met}
                for what, value, target, met in self.checks()
            ],
        }
