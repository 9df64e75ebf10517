"""Scanned writes through gRPC Put and cross-backend Copy, on a real clamd:
EICAR in a 64 MiB stream is never visible under its key and lands in
quarantine; clean objects pass marked scan=clean; the staging prefix is
nobody's; an unreachable scanner fails closed, or stores marked skipped."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core.ingest import Expected, Incoming, store
from gateway.domain.objects import WriteOptions
from storagegw import (
    Client,
    InvalidArgument,
    MalwareDetected,
    PreconditionFailed,
    ScannerUnavailable,
)
from tests.clamd_server import EICAR, EICAR_BODY_SIGNATURE, ClamdServer
from tests.conftest import RunningGateway, run_gateway
from tests.scanning.scan_gateways import (
    BIG,
    MIB,
    QUARANTINE,
    SCANNED_BUCKETS,
    STAGING,
    assert_not_visible,
    assert_quarantined,
    config_text,
    pending_keys,
    scan_gateway,
    with_eicar,
)


@pytest.fixture(scope="module")
def running(
    clamd: ClamdServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    with scan_gateway(tmp_path_factory.mktemp("scan-puts"), clamd.tcp_address) as gateway:
        yield gateway


@pytest.mark.parametrize(
    ("where", "bucket"), [("start", "files"), ("middle", "mem"), ("end", "files")]
)
def test_eicar_in_a_large_put_is_quarantined_never_stored(
    running: RunningGateway, client: Client, bucket: str, where: str
) -> None:
    key = f"put/{where}.bin"
    data = with_eicar(BIG, where)
    with pytest.raises(MalwareDetected) as caught:
        client.put_bytes(key, data, bucket=bucket)
    error = caught.value
    assert error.signature == EICAR_BODY_SIGNATURE
    assert error.metadata["quarantine_bucket"] == QUARANTINE
    assert error.metadata["quarantine_key"] == f"{bucket}/{key}"
    assert_not_visible(client, bucket, key)
    assert_quarantined(client, bucket, key, data)
    assert pending_keys(running, bucket) == []


@pytest.mark.parametrize("bucket", SCANNED_BUCKETS)
def test_a_clean_put_is_stored_marked_clean(
    running: RunningGateway, client: Client, bucket: str
) -> None:
    data = os.urandom(3 * MIB)
    info = client.put_bytes("clean.bin", data, bucket=bucket, metadata={"scan": "forged", "a": "b"})
    assert info.key == "clean.bin"
    stored = client.head("clean.bin", bucket=bucket)
    assert stored.metadata["scan"] == "clean"
    assert stored.metadata["scan-scanner"].startswith("ClamAV ")
    assert stored.metadata["a"] == "b"
    assert client.get_bytes("clean.bin", bucket=bucket) == data
    assert pending_keys(running, bucket) == []


def test_preconditions_are_checked_before_the_bytes_stream(
    running: RunningGateway, client: Client
) -> None:
    client.put_bytes("once.bin", b"first", bucket="files")
    with pytest.raises(PreconditionFailed):
        client.put_bytes("once.bin", b"second", bucket="files", if_none_match="*")
    assert client.get_bytes("once.bin", bucket="files") == b"first"
    assert pending_keys(running, "files") == []


def test_without_a_quarantine_bucket_infected_bytes_are_deleted(
    running: RunningGateway, client: Client
) -> None:
    with pytest.raises(MalwareDetected) as caught:
        client.put_bytes("gone.bin", EICAR, bucket="discard")
    assert "quarantine_key" not in caught.value.metadata
    assert_not_visible(client, "discard", "gone.bin")
    assert pending_keys(running, "discard") == []


@pytest.mark.parametrize("where", ["start", "end"])
def test_a_cross_backend_copy_is_scanned(client: Client, where: str) -> None:
    data = with_eicar(BIG, where)
    client.put_bytes(f"copy-{where}.bin", data, bucket="plain")
    with pytest.raises(MalwareDetected):
        client.copy(
            f"copy-{where}.bin", f"copied-{where}.bin", src_bucket="plain", dst_bucket="files"
        )
    assert_not_visible(client, "files", f"copied-{where}.bin")
    assert_quarantined(client, "files", f"copied-{where}.bin", data)
    clean = os.urandom(MIB)
    client.put_bytes("copy-clean.bin", clean, bucket="plain", metadata={"scan": "clean"})
    client.copy("copy-clean.bin", "copied-clean.bin", src_bucket="plain", dst_bucket="mem")
    assert (
        client.head("copied-clean.bin", bucket="mem").metadata["scan-scanner"].startswith("ClamAV")
    )
    # Within the bucket: the driver's copy keeps the scan status, even with new metadata.
    client.copy(
        "copied-clean.bin", "again.bin", src_bucket="mem", dst_bucket="mem", metadata={"x": "y"}
    )
    again = client.head("again.bin", bucket="mem").metadata
    assert (again["scan"], again["x"]) == ("clean", "y")


def test_the_staging_prefix_is_refused_and_hidden(running: RunningGateway, client: Client) -> None:
    for call in (
        lambda: client.put_bytes(f"{STAGING}mine", b"x", bucket="files"),
        lambda: client.head(f"{STAGING}mine", bucket="files"),
        lambda: client.get_bytes(f"{STAGING}x", bucket="files"),
        lambda: client.delete(f"{STAGING}x", bucket="files"),
        lambda: list(client.list(bucket="files", prefix=STAGING)),
    ):
        with pytest.raises(InvalidArgument, match="reserved"):
            call()
    # A pending object (as a write's, until its verdict) is left out of List.
    backend = running.backend("files")

    async def chunks() -> AsyncIterator[bytes]:
        yield b"pending"

    running.run(store(backend, f"{STAGING}left", WriteOptions(), Incoming(chunks(), Expected())))
    client.put_bytes("seen.bin", b"x", bucket="files")
    listed = [info.key for info in client.list(bucket="files")]
    assert "seen.bin" in listed
    assert f"{STAGING}left" not in listed
    pages = list(client.list_pages(bucket="files", delimiter="/"))
    assert STAGING not in [prefix for page in pages for prefix in page.prefixes]
    running.run(backend.delete(f"{STAGING}left"))


def test_an_unreachable_scanner_fails_closed(running: RunningGateway, client: Client) -> None:
    # A small body: a sync client still streaming a large one when the gateway
    # refuses the call can trip gRPC core's "FORWARDED_BATCH" abort
    # (grpc/grpc#40283), which kills the test process, not this check.
    with pytest.raises(ScannerUnavailable) as caught:
        client.put_bytes("closed.bin", os.urandom(4096), bucket="strict")
    assert caught.value.metadata["scanner"].startswith("clamd tcp://127.0.0.1:")
    assert_not_visible(client, "strict", "closed.bin")
    assert pending_keys(running, "strict") == []


def test_an_unreachable_scanner_stores_marked_skipped_where_allowed(client: Client) -> None:
    data = os.urandom(MIB)
    client.put_bytes("open.bin", data, bucket="lenient")
    info = client.head("open.bin", bucket="lenient")
    assert info.metadata["scan"] == "skipped"
    assert client.get_bytes("open.bin", bucket="lenient") == data


def killing_after(clamd: ClamdServer, chunks: int) -> Iterator[bytes]:
    """64 MiB of a body whose scanner is killed after chunks MiB were sent."""
    for index in range(64):
        if index == chunks:
            clamd.kill()
        yield os.urandom(MIB)


def test_clamd_killed_mid_put_fails_closed(doomed_clamd: ClamdServer, tmp_path: Path) -> None:
    with (
        scan_gateway(tmp_path, doomed_clamd.tcp_address) as running,
        Client(running.target, timeout=120) as client,
    ):
        body = killing_after(doomed_clamd, 8)
        with pytest.raises(ScannerUnavailable):
            client.put_file("killed.bin", body, bucket="files", resumable=False)  # type: ignore[arg-type]
        assert_not_visible(client, "files", "killed.bin")
        assert pending_keys(running, "files") == []


def test_clamd_killed_mid_put_stores_marked_skipped_where_allowed(
    doomed_clamd: ClamdServer, tmp_path: Path
) -> None:
    """on_unavailable = "store": the write goes on without its scan, and the
    object is promoted marked scan=skipped, for a later rescan."""
    address = doomed_clamd.tcp_address
    with (
        scan_gateway(tmp_path, address, dead=address) as running,
        Client(running.target, timeout=120) as client,
    ):
        body = killing_after(doomed_clamd, 8)
        info = client.put_file("half-scanned.bin", body, bucket="lenient", resumable=False)  # type: ignore[arg-type]
        assert info.size == 64 * MIB
        assert client.head("half-scanned.bin", bucket="lenient").metadata["scan"] == "skipped"
        assert pending_keys(running, "lenient") == []


def test_promotion_through_the_metered_driver(clamd: ClamdServer, tmp_path: Path) -> None:
    """With metrics on, each driver is wrapped (telemetry.InstrumentedBackend):
    the wrapper passes the move on, metered, and the object is promoted by it."""
    config = tmp_path / "buckets.toml"
    config.write_text(config_text(clamd.tcp_address))
    env = {"GATEWAY_CONFIG": str(config), "GATEWAY_METRICS_LISTEN": "127.0.0.1:0"}
    with run_gateway(env, tmp_path) as running, Client(running.target, timeout=60) as client:
        backend = running.backend("files")
        assert type(backend).__name__ == "InstrumentedBackend"
        assert type(backend.capabilities.mover).__name__ == "InstrumentedMover"
        client.put_bytes("metered.bin", b"clean bytes", bucket="files")
        assert client.head("metered.bin", bucket="files").metadata["scan"] == "clean"
        assert pending_keys(running, "files") == []


@pytest.mark.parametrize("bucket", SCANNED_BUCKETS)
def test_an_empty_object_is_scanned_and_stored(client: Client, bucket: str) -> None:
    client.put_bytes("empty.bin", b"", bucket=bucket)
    info = client.head("empty.bin", bucket=bucket)
    assert (info.size, info.metadata["scan"]) == (0, "clean")


def hold_after_commit(running: RunningGateway, bucket: str) -> tuple[threading.Event, Any]:
    """Make the bucket's driver hold each write just after its commit (the
    pending object stored, its verdict not yet asked for): an event set then,
    and a function that lets it go on."""
    backend = running.backend(bucket)
    committed = threading.Event()
    go_on = asyncio.Event()
    original_open_write = backend.open_write

    class HeldWriter:
        def __init__(self, writer: Any) -> None:
            self._writer = writer

        async def write(self, data: bytes) -> None:
            await self._writer.write(data)

        async def commit(self, checksums: Any) -> Any:
            meta = await self._writer.commit(checksums)
            committed.set()
            await go_on.wait()
            return meta

        async def abort(self) -> None:
            await self._writer.abort()

    async def open_write(key: str, options: Any) -> Any:
        return HeldWriter(await original_open_write(key, options))

    backend.open_write = open_write
    return committed, lambda: running.loop.call_soon_threadsafe(go_on.set)


def test_nothing_is_visible_before_the_verdict(clamd: ClamdServer, tmp_path: Path) -> None:
    with (
        scan_gateway(tmp_path, clamd.tcp_address) as running,
        Client(running.target, timeout=120) as client,
    ):
        committed, go_on = hold_after_commit(running, "files")
        data = os.urandom(2 * MIB)
        stored: list[object] = []
        put = threading.Thread(
            target=lambda: stored.append(client.put_bytes("held.bin", data, bucket="files"))
        )
        put.start()
        try:
            assert committed.wait(60)
            # All the bytes are stored, at a pending key: not under the key, not listed.
            assert len(pending_keys(running, "files")) == 1
            assert_not_visible(client, "files", "held.bin")
        finally:
            go_on()
            put.join(60)
        assert stored
        assert client.head("held.bin", bucket="files").metadata["scan"] == "clean"
        assert pending_keys(running, "files") == []
