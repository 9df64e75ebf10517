"""download_file in parallel ranges (both clients, and `storagegw get`)
against a real gateway: byte for byte at the range boundaries, a replaced
object, a corrupted range, a resumed range, the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from storagegw import (
    AsyncClient,
    ChecksumMismatch,
    Client,
    ObjectInfo,
    PreconditionFailed,
    RetryPolicy,
)
from tests.client.cli_command import CLI
from tests.conftest import RunningGateway
from tests.log_records import AccessLog
from tests.tcp_proxy import TcpProxy

MIB = 1024 * 1024
FAST = RetryPolicy(max_attempts=10, initial_backoff=0.01, max_backoff=0.05)
CLIENTS = ["sync", "async"]


@dataclass
class GetRecorder(grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Notes each Get's (read_offset, read_limit) as the client sends it."""

    requests: list[tuple[int, int | None]] = field(default_factory=list)

    def note(self, method: str | bytes, request: Any) -> None:
        name = method.decode() if isinstance(method, bytes) else method
        if name.endswith("/Get"):
            limit = request.read_limit if request.HasField("read_limit") else None
            self.requests.append((request.read_offset, limit))

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        self.note(details.method, request)
        return continuation(details, request)


class AsyncGetRecorder(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, recorder: GetRecorder) -> None:
        self.recorder = recorder

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        self.recorder.note(details.method, request)
        return await continuation(details, request)


def download(
    kind: str,
    target: str,
    key: str,
    dest: Path,
    recorder: GetRecorder | None = None,
    **options: Any,
) -> ObjectInfo:
    """client.download_file(key, dest, **options) with the sync or the async client."""
    if kind == "sync":
        channel = grpc.insecure_channel(target)
        if recorder is not None:
            channel = grpc.intercept_channel(channel, recorder)
        with channel, Client(target, channel=channel, retry=FAST) as client:
            return client.download_file(key, dest, **options)

    async def main() -> ObjectInfo:
        interceptors = [AsyncGetRecorder(recorder)] if recorder is not None else None
        channel = grpc.aio.insecure_channel(target, interceptors=interceptors)
        async with channel, AsyncClient(target, channel=channel, retry=FAST) as client:
            return await client.download_file(key, dest, **options)

    return asyncio.run(main())


def ranges(size: int, threshold: int, parallel: int) -> list[tuple[int, int]]:
    """The ranges download_file reads: the first `threshold` bytes, then
    `parallel` near-equal ranges of the rest (as the README says)."""
    if size <= threshold:
        return [(0, size)]
    rest = size - threshold
    count = min(parallel, rest)
    step, extra = divmod(rest, count)
    found, start = [(0, threshold)], threshold
    for index in range(count):
        end = start + step + (1 if index < extra else 0)
        found.append((start, end))
        start = end
    return found


def put(target: str, key: str, data: bytes) -> ObjectInfo:
    with Client(target) as client:
        return client.put_bytes(key, data)


THRESHOLD = 300_001  # not a multiple of the gateway's 1 MiB chunks
SIZES = [THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, THRESHOLD + 2, THRESHOLD + 3 * MIB + 2]


@pytest.mark.parametrize("kind", CLIENTS)
def test_parallel_download_equals_the_object_at_range_boundaries(
    gateway: RunningGateway, kind: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for size in SIZES:
        data = os.urandom(size)
        key = f"par/{size}"
        stored = put(gateway.target, key, data)
        dest = out / f"{size}.bin"
        recorder = GetRecorder()
        seen: list[int] = []
        info = download(
            kind,
            gateway.target,
            key,
            dest,
            recorder,
            parallel=3,
            parallel_threshold=THRESHOLD,
            progress=seen.append,
        )
        assert dest.read_bytes() == data, size
        # The object Put stored, but for its times: on S3 a small Put's time
        # comes from the answer's Date (no HeadObject read-back), which can be
        # a second past the Last-Modified a later Get reports (README, S3).
        assert dataclasses.replace(info, create_time=None, update_time=None) == (
            dataclasses.replace(stored, create_time=None, update_time=None)
        )
        expected = ranges(size, THRESHOLD, 3)
        asked = sorted(
            (offset, min(size, offset + (limit or size))) for offset, limit in recorder.requests
        )
        assert asked == expected, size
        assert seen == sorted(seen)
        assert seen[-1] == size
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.bin" for s in SIZES)


@pytest.mark.parametrize("kind", CLIENTS)
def test_parallel_off_reads_one_stream(memory_gateway: RunningGateway, kind: str, tmp_path):
    data = os.urandom(2 * MIB + 3)
    put(memory_gateway.target, "one", data)
    for options in ({"parallel": 1}, {"parallel_threshold": None}):
        recorder = GetRecorder()
        dest = tmp_path / "one.bin"
        download(kind, memory_gateway.target, "one", dest, recorder, **options)
        assert recorder.requests == [(0, None)]
        assert dest.read_bytes() == data


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_replaced_object_fails_the_parallel_download_and_leaves_nothing(
    memory_gateway: RunningGateway, proxy: TcpProxy, kind: str, tmp_path: Path
) -> None:
    put(memory_gateway.target, "moving.bin", os.urandom(12 * MIB))
    (tmp_path / "out").mkdir()
    replaced: list[ObjectInfo] = []

    def replace() -> None:
        # At the cut, before any range can reconnect and resume.
        replaced.append(put(memory_gateway.target, "moving.bin", os.urandom(12 * MIB)))

    def cut_once_some_bytes_are_written(done: int) -> None:
        if done and not proxy.cut_done.is_set() and not replaced:
            proxy.cut_after(then=replace)
            proxy.cut()

    with pytest.raises(PreconditionFailed):
        download(
            kind,
            proxy.target,
            "moving.bin",
            tmp_path / "out" / "moving.bin",
            parallel=4,
            parallel_threshold=MIB,
            progress=cut_once_some_bytes_are_written,
        )
    assert replaced
    assert list((tmp_path / "out").iterdir()) == []  # nothing, not even a .part file


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_corrupted_range_is_detected(
    local_gateway: RunningGateway, kind: str, tmp_path: Path
) -> None:
    size = 6 * MIB + 5
    data = os.urandom(size)
    put(local_gateway.target, "rotten.bin", data)
    # Flip a byte of the stored file inside the third range: the gateway
    # checksums each chunk as it reads it, so only the whole object's CRC32C,
    # combined by the client from the ranges', can tell.
    path = local_gateway.backend()._path("rotten.bin")
    where = os.path.getsize(path) - size + 4 * MIB + 12345
    with open(path, "r+b") as file:
        file.seek(where)
        byte = file.read(1)
        file.seek(where)
        file.write(bytes([byte[0] ^ 0x40]))
    dest = tmp_path / "out" / "rotten.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"previous")
    with pytest.raises(ChecksumMismatch, match="crc32c"):
        download(kind, local_gateway.target, "rotten.bin", dest, parallel=4, parallel_threshold=MIB)
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in dest.parent.iterdir()] == ["rotten.bin"]


@pytest.mark.parametrize("kind", CLIENTS)
def test_an_interrupted_parallel_download_fetches_only_what_was_missing(
    memory_gateway: RunningGateway, proxy: TcpProxy, kind: str, tmp_path: Path
) -> None:
    size = 32 * MIB + 7
    data = os.urandom(size)
    put(memory_gateway.target, "cut.bin", data)
    planned = ranges(size, 4 * MIB, 4)
    recorder = GetRecorder()
    dest = tmp_path / "cut.bin"
    written_at_cut: list[int] = []

    def cut_once_12_mib_are_written(written: int) -> None:
        if written >= 12 * MIB and not written_at_cut:
            written_at_cut.append(written)
            proxy.cut()

    info = download(
        kind,
        proxy.target,
        "cut.bin",
        dest,
        recorder,
        parallel=4,
        parallel_threshold=4 * MIB,
        progress=cut_once_12_mib_are_written,
    )
    assert proxy.cuts == 1
    assert dest.read_bytes() == data
    assert info.sha256 == hashlib.sha256(data).digest()
    # One Get of each whole range; the others resumed a range (a range the
    # cut found without a byte verified asks for all of it again).
    resumed = list(recorder.requests)
    for start, end in planned:
        resumed.remove((start, end - start))
    assert resumed  # the ranges the cut broke
    ends = {end for _, end in planned}
    starts = {start for start, _ in planned}
    for offset, limit in resumed:
        assert limit is not None
        assert offset + limit in ends  # the rest of one range
    # Each range resumed from what it had verified, not from its start: the
    # bytes asked again are at most those not yet written at the cut.
    assert any(offset not in starts for offset, _ in resumed)
    assert sum(limit or 0 for _, limit in resumed) <= size - written_at_cut[0]


def test_cli_get_reads_in_parallel(
    local_gateway: RunningGateway, access_log: AccessLog, tmp_path: Path
) -> None:
    data = os.urandom(5 * MIB + 3)
    put(local_gateway.target, "cli/big.bin", data)
    out = tmp_path / "big.bin"
    argv = [CLI, "--target", local_gateway.target, "get", "cli/big.bin", str(out)]
    argv += ["--parallel", "3", "--parallel-threshold", str(MIB)]
    result = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_bytes() == data

    def gets() -> list[logging.LogRecord]:
        return [r for r in access_log.records if getattr(r, "rpc_method", "") == "Get"]

    access_log.wait(lambda _: len(gets()) >= 4)  # each written as its call ends
    assert sorted(record.bytes for record in gets()) == sorted(
        end - start for start, end in ranges(len(data), MIB, 3)
    )
    bad = subprocess.run([*argv[:-4], "--parallel", "0"], capture_output=True, check=False)
    assert bad.returncode != 0
    assert b"must be at least 1" in bad.stderr
