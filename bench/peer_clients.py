"""How bench.peers moves bytes: each server with the client its users would take.

- storagegw: its own Python client, as an application calls it: Client.put_file
  and Client.download_file for a big object (every chunk and the whole object
  checked end to end; the download goes to a temporary file that is fsynced and
  renamed, in parallel ranges above 64 MiB), AsyncClient.put_bytes and get_bytes
  for small objects.
- the HTTP peers: httpx for a big object (the upload streamed from the file, the
  download streamed to a temporary file, fsynced and renamed), aiohttp for small
  objects at concurrency.

A small round opens its client, warms it up (untimed, outside the CPU figures),
then runs `concurrency` workers for a time; `cpu` is read just around that pass.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
import httpx

from bench.peer_servers import Peer
from storagegw import AsyncClient, Client

TIMEOUT = 600.0  # one big transfer
SMALL_TIMEOUT = 30.0


class BigClient(Protocol):
    def put(self, key: str, source: Path) -> None: ...

    def download(self, key: str, dest: Path) -> None: ...

    def close(self) -> None: ...


class GatewayBig:
    """storagegw's sync Client, with its defaults (put_file resumable from 8 MiB;
    download_file in parallel ranges above 64 MiB, unless parallel says otherwise)."""

    def __init__(self, target: str, chunk_size: int, parallel: int | None = None) -> None:
        self._client = Client(target, chunk_size=chunk_size)
        self._parallel = parallel

    def put(self, key: str, source: Path) -> None:
        self._client.put_file(key, source)

    def download(self, key: str, dest: Path) -> None:
        if self._parallel is None:
            self._client.download_file(key, dest)
        else:
            self._client.download_file(key, dest, parallel=self._parallel)

    def close(self) -> None:
        self._client.close()


class HttpBig:
    """httpx, one keep-alive connection to the peer."""

    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self._client = httpx.Client(timeout=TIMEOUT)

    def put(self, key: str, source: Path) -> None:
        with source.open("rb") as body:  # httpx streams a file in 64 KiB reads
            response = self._client.put(self._peer.url(key), content=body)
        response.raise_for_status()

    def download(self, key: str, dest: Path) -> None:
        temp = dest.with_name(dest.name + ".part")
        with self._client.stream("GET", self._peer.url(key)) as response:
            response.raise_for_status()
            with temp.open("wb") as out:
                for piece in response.iter_bytes():
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
        os.replace(temp, dest)

    def close(self) -> None:
        self._client.close()


def big_client(
    peer: Peer | None, target: str, chunk_size: int, parallel: int | None = None
) -> BigClient:
    """The client of peer, or storagegw's (peer None) at target, with parallel
    download ranges (None: download_file's default)."""
    return GatewayBig(target, chunk_size, parallel) if peer is None else HttpBig(peer)


# Small objects.


class SmallClient(Protocol):
    async def put(self, key: str) -> None: ...

    async def get(self, key: str) -> None: ...

    async def close(self) -> None: ...


class GatewaySmall:
    def __init__(self, target: str, payload: bytes) -> None:
        self._client = AsyncClient(target, timeout=SMALL_TIMEOUT)
        self._payload = payload

    async def put(self, key: str) -> None:
        await self._client.put_bytes(key, self._payload)

    async def get(self, key: str) -> None:
        if len(await self._client.get_bytes(key)) != len(self._payload):
            raise RuntimeError(f"storagegw Get {key}: wrong size")

    async def close(self) -> None:
        await self._client.close()


class HttpSmall:
    def __init__(self, peer: Peer, payload: bytes, concurrency: int) -> None:
        self._peer, self._payload = peer, payload
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=SMALL_TIMEOUT),
        )

    async def put(self, key: str) -> None:
        async with self._session.put(self._peer.url(key), data=self._payload) as response:
            response.raise_for_status()

    async def get(self, key: str) -> None:
        async with self._session.get(self._peer.url(key)) as response:
            response.raise_for_status()
            if len(await response.read()) != len(self._payload):
                raise RuntimeError(f"{self._peer.name} GET {key}: wrong size")

    async def close(self) -> None:
        await self._session.close()


@dataclass(frozen=True)
class SmallRound:
    ops: int
    seconds: float
    server_cpu_s: float
    client_cpu_s: float


@dataclass(frozen=True)
class SmallCell:
    """What one small round does: op on keys key(0), key(1), ... by `concurrency`
    workers for `seconds`, after an untimed warm-up on warm_key(0), ..."""

    op: str  # "put" or "get"
    concurrency: int
    seconds: float
    key: Callable[[int], str]
    warm_key: Callable[[int], str]


async def _pass(
    fn: Callable[[str], Awaitable[None]],
    key: Callable[[int], str],
    concurrency: int,
    seconds: float,
    max_ops: int | None = None,
) -> tuple[int, float]:
    """(ops done, seconds taken) by concurrency workers until the time or max_ops is up."""
    counter = itertools.count()
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> int:
        done = 0
        while time.perf_counter() < deadline:
            number = next(counter)
            if max_ops is not None and number >= max_ops:
                break
            await fn(key(number))
            done += 1
        return done

    counts = await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sum(counts), time.perf_counter() - started


async def _small_round(
    client: SmallClient, cell: SmallCell, cpu: Callable[[], tuple[float, float]]
) -> SmallRound:
    try:
        fn = client.put if cell.op == "put" else client.get
        await fn(cell.warm_key(0))  # the connection is up before the burst
        await _pass(fn, cell.warm_key, cell.concurrency, cell.seconds, max(16, cell.concurrency))
        server_before, client_before = cpu()
        ops, seconds = await _pass(fn, cell.key, cell.concurrency, cell.seconds)
        server_after, client_after = cpu()
    finally:
        await client.close()
    return SmallRound(ops, seconds, server_after - server_before, client_after - client_before)


def small_round(
    peer: Peer | None,
    target: str,
    payload: bytes,
    cell: SmallCell,
    cpu: Callable[[], tuple[float, float]],
) -> SmallRound:
    """One round through peer's client, or storagegw's (peer None) at target;
    cpu() gives (server CPU s, this process's CPU s) so far."""

    async def run() -> SmallRound:
        client: SmallClient = (
            GatewaySmall(target, payload)
            if peer is None
            else HttpSmall(peer, payload, cell.concurrency)
        )
        return await _small_round(client, cell, cpu)

    return asyncio.run(run())
