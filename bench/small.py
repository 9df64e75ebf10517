"""Small objects at a given concurrency: threads with sync stubs, or grpc.aio tasks.

Each cell opens one channel, warms it up (untimed: one call, then one pass at
the cell's concurrency), then runs ops until
max_ops are done or max_seconds have passed, whichever comes first.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from bench.raw_server import encode_small_put
from storagegw._streams import SMALL_PUT
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc

MECHANISMS = ("threads", "aio")
TIMEOUT = 30.0


@dataclass(frozen=True)
class Payload:
    data: bytes
    crc32c: int
    sha256: bytes


def cell_keys(
    op: str, prefix: str, stored: Sequence[str]
) -> tuple[Callable[[int], str], Callable[[int], str]]:
    """(key, warm-up key) of a cell's n-th operation: a Put writes fresh keys
    under prefix, a Get cycles through the keys stored before."""
    if op == "put":
        return (lambda n: f"{prefix}/{n:06d}"), (lambda n: f"{prefix}/warm-{n:06d}")

    def stored_key(n: int) -> str:
        return stored[n % len(stored)]

    return stored_key, stored_key


@dataclass(frozen=True)
class CellResult:
    ops: int
    seconds: float

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


def _gateway_put_messages(key: str, payload: Payload) -> list[pb.PutRequest]:
    # As the bundled client sends it: the spec alone, then the data with
    # finish_write; an object under SMALL_PUT in one message with its spec.
    spec = pb.PutSpec(key=key, size=len(payload.data))
    last = pb.PutRequest(
        chunk=pb.ChecksummedData(content=payload.data, crc32c=payload.crc32c),
        object_checksums=pb.ObjectChecksums(crc32c=payload.crc32c, sha256=payload.sha256),
        finish_write=True,
    )
    if len(payload.data) < SMALL_PUT:
        last.spec.CopyFrom(spec)
        return [last]
    return [pb.PutRequest(spec=spec), last]


def sync_ops(
    target: str,
    channel: grpc.Channel,
    payload: Payload,
    metadata: tuple[tuple[str, str], ...] = (),
) -> dict[str, Callable[[str], Any]]:
    if target == "raw":
        put_small = channel.unary_unary("/raw.Raw/PutSmall")
        get_small = channel.unary_stream("/raw.Raw/GetSmall")

        def raw_put(key: str) -> None:
            put_small(encode_small_put(key.encode(), payload.data), timeout=TIMEOUT)

        def raw_get(key: str) -> None:
            if sum(len(m) for m in get_small(key.encode(), timeout=TIMEOUT)) != len(payload.data):
                raise RuntimeError(f"raw GetSmall {key}: wrong size")

        return {"put": raw_put, "get": raw_get}
    stub = storage_pb2_grpc.StorageServiceStub(channel)

    def gateway_put(key: str) -> None:
        stub.Put(iter(_gateway_put_messages(key, payload)), timeout=TIMEOUT, metadata=metadata)

    def gateway_get(key: str) -> None:
        got = sum(
            len(r.chunk.content)
            for r in stub.Get(pb.GetRequest(key=key), timeout=TIMEOUT, metadata=metadata)
        )
        if got != len(payload.data):
            raise RuntimeError(f"gateway Get {key}: wrong size")

    return {"put": gateway_put, "get": gateway_get}


def aio_ops(
    target: str,
    channel: grpc.aio.Channel,
    payload: Payload,
    metadata: tuple[tuple[str, str], ...] = (),
) -> dict[str, Callable[[str], Awaitable[None]]]:
    if target == "raw":
        put_small = channel.unary_unary("/raw.Raw/PutSmall")
        get_small = channel.unary_stream("/raw.Raw/GetSmall")

        async def raw_put(key: str) -> None:
            await put_small(encode_small_put(key.encode(), payload.data), timeout=TIMEOUT)

        async def raw_get(key: str) -> None:
            got = 0
            async for message in get_small(key.encode(), timeout=TIMEOUT):
                got += len(message)
            if got != len(payload.data):
                raise RuntimeError(f"raw GetSmall {key}: wrong size")

        return {"put": raw_put, "get": raw_get}
    stub = storage_pb2_grpc.StorageServiceStub(channel)

    async def gateway_put(key: str) -> None:
        await stub.Put(
            iter(_gateway_put_messages(key, payload)), timeout=TIMEOUT, metadata=metadata
        )

    async def gateway_get(key: str) -> None:
        got = 0
        async for response in stub.Get(pb.GetRequest(key=key), timeout=TIMEOUT, metadata=metadata):
            got += len(response.chunk.content)
        if got != len(payload.data):
            raise RuntimeError(f"gateway Get {key}: wrong size")

    return {"put": gateway_put, "get": gateway_get}


@dataclass(frozen=True)
class Cell:
    target: str  # "raw" or "gateway"
    address: str
    options: list[tuple[str, Any]]
    op: str  # "put" or "get"
    concurrency: int
    max_ops: int
    max_seconds: float
    key: Callable[[int], str]  # op number -> key
    warm_key: Callable[[int], str]
    credentials: grpc.ChannelCredentials | None = None  # TLS; None: plaintext
    metadata: tuple[tuple[str, str], ...] = ()  # sent with every gateway call


def sync_channel(cell: Cell) -> grpc.Channel:
    if cell.credentials is None:
        return grpc.insecure_channel(cell.address, options=cell.options)
    return grpc.secure_channel(cell.address, cell.credentials, options=cell.options)


def aio_channel(cell: Cell) -> grpc.aio.Channel:
    if cell.credentials is None:
        return grpc.aio.insecure_channel(cell.address, options=cell.options)
    return grpc.aio.secure_channel(cell.address, cell.credentials, options=cell.options)


def _thread_pass(
    fn: Callable[[str], Any], key: Callable[[int], str], cell: Cell, max_ops: int, seconds: float
) -> CellResult:
    counter = itertools.count()
    done = [0] * cell.concurrency
    errors: list[BaseException] = []
    start_barrier = threading.Barrier(cell.concurrency + 1)
    deadline = [0.0]

    def worker(slot: int) -> None:
        start_barrier.wait()
        try:
            while not errors:
                number = next(counter)
                if number >= max_ops or time.perf_counter() > deadline[0]:
                    return
                fn(key(number))
                done[slot] += 1
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=worker, args=(i,), daemon=True) for i in range(cell.concurrency)
    ]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    start_barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return CellResult(sum(done), elapsed)


def run_threads(cell: Cell, payload: Payload) -> CellResult:
    with sync_channel(cell) as channel:
        fn = sync_ops(cell.target, channel, payload, cell.metadata)[cell.op]
        fn(cell.warm_key(0))  # one call first: the connection is up before the burst
        _thread_pass(fn, cell.warm_key, cell, max(16, cell.concurrency), 5.0)
        return _thread_pass(fn, cell.key, cell, cell.max_ops, cell.max_seconds)


async def _aio_pass(
    fn: Callable[[str], Awaitable[None]],
    key: Callable[[int], str],
    concurrency: int,
    max_ops: int,
    seconds: float,
) -> CellResult:
    counter = itertools.count()
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> int:
        done = 0
        while True:
            number = next(counter)
            if number >= max_ops or time.perf_counter() > deadline:
                return done
            await fn(key(number))
            done += 1

    counts = await asyncio.gather(*(worker() for _ in range(concurrency)))
    return CellResult(sum(counts), time.perf_counter() - started)


async def _run_aio(cell: Cell, payload: Payload) -> CellResult:
    async with aio_channel(cell) as channel:
        fn = aio_ops(cell.target, channel, payload, cell.metadata)[cell.op]
        # One call first: the connection (and any TLS handshake) is up before the burst.
        await fn(cell.warm_key(0))
        await _aio_pass(fn, cell.warm_key, cell.concurrency, max(16, cell.concurrency), 5.0)
        return await _aio_pass(fn, cell.key, cell.concurrency, cell.max_ops, cell.max_seconds)


def run_aio(cell: Cell, payload: Payload) -> CellResult:
    return asyncio.run(_run_aio(cell, payload))


def run(mechanism: str, cell: Cell, payload: Payload) -> CellResult:
    return run_threads(cell, payload) if mechanism == "threads" else run_aio(cell, payload)
