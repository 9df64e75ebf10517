"""The resumable-upload section: what the resumable path costs against a plain
Put, and how long a resume takes after the gateway was killed.

On each backend (local disk, S3 on moto, S3 on Ceph RGW when installed) one
gateway process serves; for the big size, alternating, a plain Put and a
resumable upload (StartUpload, then one Put stream on its upload_id with the
same pre-encoded chunks and whole-object checksums, finish_write at the end)
of the same bytes. The best of --repeat runs of each is compared: the
overhead is resumable time / plain time - 1 (target: at most 5%).

Time to resume: an upload is streamed until the gateway reports a quarter of
it persisted, the gateway is killed (SIGKILL) and a fresh one started on the
same settings; then, timed: QueryUpload (the round trip that tells where to
continue) and a one-chunk Put stream from the persisted size (the resumed
upload's first bytes accepted and persisted). The rest is then sent and the
object's SHA-256 checked.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from bench import big, procs, s3, s3_servers, servers
from bench.data import BigData, BigObject
from bench.report import MIB, human_size
from bench.section import Section
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc

MAX_OVERHEAD = 0.05
SECRET = "storagegw-bench-resumable-secret"  # noqa: S105 - the bench's throw-away gateways


@dataclass(frozen=True)
class ResumableRow:
    backend: str
    size: int
    plain_s: float
    resumable_s: float
    query_ms: float  # QueryUpload round trip after the restart
    first_bytes_ms: float  # one-chunk continuation after the restart
    restart_s: float  # kill to the fresh gateway accepting calls

    @property
    def overhead(self) -> float:
        return self.resumable_s / self.plain_s - 1

    @property
    def met(self) -> bool:
        return self.overhead <= MAX_OVERHEAD


def resumable_messages(
    data: BigData, obj: BigObject, upload_id: str, start: int = 0, end: int | None = None
) -> Iterator[bytes]:
    """Wire bytes of a Put stream on upload_id with chunks [start, end) (by
    index), finishing (with the whole-object checksums) when end is None."""
    yield pb.PutRequest(
        upload_id=upload_id, write_offset=start * data.chunk_size
    ).SerializeToString()
    stop = len(obj.chunk_crcs) if end is None else end
    for index in range(start, stop):
        yield data.data_message(index, obj.size, obj.chunk_crcs[index])
    if end is None:
        last = pb.PutRequest(write_offset=obj.size, finish_write=True)
        last.object_checksums.crc32c = obj.crc32c
        last.object_checksums.sha256 = obj.sha256
        yield last.SerializeToString()


def _put_bytes(channel: grpc.Channel, messages: Iterator[bytes]) -> pb.PutResponse:
    call = channel.stream_unary(
        big.PUT_METHOD, request_serializer=None, response_deserializer=pb.PutResponse.FromString
    )
    response: pb.PutResponse = call(messages, timeout=big.TIMEOUT)
    return response


class ResumableSection(Section[ResumableRow]):
    name = "resumable"  # of its JSON file

    def setup(self) -> None:
        self.data = BigData(self.args.chunk_size)

    def run(self) -> None:
        print(f"resumable: computing checksums of {human_size(self.args.size)} (untimed)...")
        obj = self.data.prepare(self.args.size)
        self._backend(
            "local",
            {"STORAGE_BACKEND": "local", "STORAGE_BASE_PATH": str(self.data_dir / "resumable")},
            obj,
        )
        for name in self.args.s3_servers:
            if name == "ceph" and s3_servers.ceph_missing():
                self.notes.append("resumable on S3 (ceph) skipped: Ceph is not installed")
                continue
            try:
                server = s3_servers.start(name, self.data_dir / f"resumable-{name}")
            except Exception as error:
                self.failed.append(name)
                self.notes.append(f"resumable on S3 ({name}) FAILED to start: {error}")
                continue
            try:
                env = s3.backend_env(server, self.args.s3_part_size, self.args.s3_concurrency)
                self._backend(f"s3 ({name})", env, obj, server.collect_garbage)
            finally:
                server.stop()
        self.notes.append(
            "resumable: plain Put and resumable upload of the same pre-encoded chunks "
            "(per-chunk CRC32C, whole-object CRC32C + SHA-256), alternating, best of "
            f"{self.args.repeat}; overhead = resumable / plain - 1 (target <= "
            f"{MAX_OVERHEAD:.0%}); resume = after SIGKILL of the gateway with a quarter "
            "persisted and a fresh gateway started: QueryUpload round trip, then a one-chunk "
            "continuation (resume, accept, persist)"
        )

    def _start(self, env: dict[str, str], label: str) -> procs.Server:
        gateway = servers.start_gateway(
            self.processes,
            self.data_dir / f"gateway-resumable-{label.replace(' ', '-')}.log",
            {**env, "STORAGE_URL_SECRET": SECRET},
            self.args.chunk_size,
            self.args.server_env,
            name=f"gateway ({label})",
        )
        procs.wait_ready(gateway, self.options)
        return gateway

    def _backend(
        self, label: str, env: dict[str, str], obj: BigObject, collect: Any = None
    ) -> None:
        print(f"resumable on {label}: starting the gateway...", flush=True)
        gateway = self._start(env, label)
        plain_best = resumable_best = float("inf")
        try:
            with grpc.insecure_channel(gateway.address, options=self.options) as channel:
                stub = storage_pb2_grpc.StorageServiceStub(channel)
                for run in range(self.args.repeat):
                    for kind in ("plain", "resumable") if run % 2 == 0 else ("resumable", "plain"):
                        key = f"bench-{kind}-{run}"
                        seconds = self._timed(channel, stub, obj, key, kind)
                        print(f"  {kind}: {obj.size / MIB / seconds:.1f} MiB/s", flush=True)
                        if kind == "plain":
                            plain_best = min(plain_best, seconds)
                        else:
                            resumable_best = min(resumable_best, seconds)
                        stub.Delete(pb.DeleteRequest(key=key))
                        if collect is not None:
                            collect()
            query_ms, first_ms, restart_s, gateway = self._resume_after_kill(
                env, label, gateway, obj
            )
        finally:
            self.processes.stop(gateway.process)
        self.rows.append(
            ResumableRow(label, obj.size, plain_best, resumable_best, query_ms, first_ms, restart_s)
        )

    def _timed(
        self,
        channel: grpc.Channel,
        stub: storage_pb2_grpc.StorageServiceStub,
        obj: BigObject,
        key: str,
        kind: str,
    ) -> float:
        begin = time.perf_counter()
        if kind == "plain":
            big.gateway_put(channel, self.data, obj, key)
        else:
            started = stub.StartUpload(
                pb.StartUploadRequest(spec=pb.PutSpec(key=key, size=obj.size))
            )
            response = _put_bytes(channel, resumable_messages(self.data, obj, started.upload_id))
            if response.object.sha256 != obj.sha256:
                raise RuntimeError(f"resumable upload of {key!r} stored other bytes")
        return time.perf_counter() - begin

    def _resume_after_kill(
        self, env: dict[str, str], label: str, gateway: procs.Server, obj: BigObject
    ) -> tuple[float, float, float, procs.Server]:
        key = "bench-resume"
        with grpc.insecure_channel(gateway.address, options=self.options) as channel:
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            upload_id = stub.StartUpload(
                pb.StartUploadRequest(spec=pb.PutSpec(key=key, size=obj.size))
            ).upload_id
            sender = threading.Thread(
                target=self._send_until_killed, args=(channel, obj, upload_id), daemon=True
            )
            sender.start()
            deadline = time.monotonic() + 600
            while (
                stub.QueryUpload(pb.QueryUploadRequest(upload_id=upload_id)).persisted_size
                < obj.size // 4
            ):
                if time.monotonic() > deadline or not sender.is_alive():
                    raise RuntimeError("the upload did not reach a quarter persisted")
                time.sleep(0.05)  # polling the server's progress, not synchronising
        killed = time.perf_counter()
        gateway.process.kill()
        gateway.process.wait()
        sender.join(60)
        fresh = self._start(env, label + " restarted")
        restart_s = time.perf_counter() - killed
        with grpc.insecure_channel(fresh.address, options=self.options) as channel:
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            grpc.channel_ready_future(channel).result(timeout=30)
            begin = time.perf_counter()
            persisted = stub.QueryUpload(pb.QueryUploadRequest(upload_id=upload_id)).persisted_size
            queried = time.perf_counter()
            index = persisted // self.data.chunk_size
            if persisted % self.data.chunk_size:
                raise RuntimeError("persisted size is not on a chunk boundary")
            segment = _put_bytes(
                channel, resumable_messages(self.data, obj, upload_id, index, index + 1)
            )
            accepted = time.perf_counter()
            # The one chunk is persisted only if it completed a unit: go on from
            # what the gateway says it holds.
            rest = segment.persisted_size // self.data.chunk_size
            done = _put_bytes(channel, resumable_messages(self.data, obj, upload_id, rest))
            if done.object.sha256 != obj.sha256:
                raise RuntimeError("the resumed upload stored other bytes")
            stub.Delete(pb.DeleteRequest(key=key))
        return (queried - begin) * 1000, (accepted - queried) * 1000, restart_s, fresh

    def _send_until_killed(self, channel: grpc.Channel, obj: BigObject, upload_id: str) -> None:
        with contextlib.suppress(grpc.RpcError):
            _put_bytes(
                channel, resumable_messages(self.data, obj, upload_id, 0, len(obj.chunk_crcs))
            )

    def render(self) -> str:
        lines = [
            "| backend | size | plain Put | resumable | overhead | target | QueryUpload after "
            "restart | first chunk accepted | kill to ready |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            lines.append(
                f"| {row.backend} | {human_size(row.size)} | "
                f"{row.size / MIB / row.plain_s:.1f} MiB/s | "
                f"{row.size / MIB / row.resumable_s:.1f} MiB/s | {row.overhead:+.1%} | "
                f"{'met' if row.met else 'MISSED'} (<= {MAX_OVERHEAD:.0%}) | "
                f"{row.query_ms:.1f} ms | {row.first_bytes_ms:.1f} ms | {row.restart_s:.2f} s |"
            )
        return (
            "Resumable uploads: overhead against a plain Put, and time to resume\n\n"
            + "\n".join(lines)
        )

    def all_met(self) -> bool:
        return not self.failed and all(row.met for row in self.rows)

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {
                "backend": r.backend,
                "size": r.size,
                "plain_seconds": r.plain_s,
                "resumable_seconds": r.resumable_s,
                "overhead": r.overhead,
                "query_ms": r.query_ms,
                "first_chunk_ms": r.first_bytes_ms,
                "kill_to_ready_s": r.restart_s,
            }
            for r in self.rows
        ]
