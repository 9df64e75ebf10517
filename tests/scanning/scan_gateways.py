"""Gateways with scanning buckets for the tests of tests/scanning, and what
those tests share: EICAR placed in a large stream, the scan status checks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.domain.objects import ListQuery
from storagegw import Client, NotFound
from tests.clamd_server import EICAR, EICAR_BODY_SIGNATURE
from tests.conftest import RunningGateway, run_gateway
from tests.servers import free_port

MIB = 1024 * 1024
BIG = 64 * MIB
# One of each driver that does and does not move cheaply, on one clamd.
SCANNED_BUCKETS = ("files", "mem")
QUARANTINE = "quarantine"
STAGING = ".storagegw-pending/"


def config_text(clamd: str, *, dead: str | None = None) -> str:
    """Buckets: files (local) and mem (memory) scanned with quarantine,
    discard (local) scanned without; plain (memory) not scanned; strict and
    lenient (local) scanned by a clamd at dead, failing closed and storing
    unscanned objects."""
    dead = dead or f"tcp://127.0.0.1:{free_port()}"
    scan = f"clamd = '{clamd}'\nquarantine_bucket = '{QUARANTINE}'\n"
    return (
        f"default_bucket = 'files'\n"
        f"[buckets.files]\nbackend = 'local'\n[buckets.files.scan]\n{scan}"
        f"[buckets.mem]\nbackend = 'memory'\n[buckets.mem.scan]\n{scan}"
        f"[buckets.discard]\nbackend = 'local'\n[buckets.discard.scan]\nclamd = '{clamd}'\n"
        f"[buckets.{QUARANTINE}]\nbackend = 'local'\n"
        f"[buckets.plain]\nbackend = 'memory'\n"
        f"[buckets.strict]\nbackend = 'local'\n[buckets.strict.scan]\nclamd = '{dead}'\n"
        f"[buckets.lenient]\nbackend = 'local'\n[buckets.lenient.scan]\nclamd = '{dead}'\n"
        "on_unavailable = 'store'\n"
    )


@contextmanager
def scan_gateway(
    directory: Path, clamd: str, *, dead: str | None = None
) -> Iterator[RunningGateway]:
    config = directory / "buckets.toml"
    config.write_text(config_text(clamd, dead=dead))
    env = {"GATEWAY_CONFIG": str(config), "STORAGE_URL_SECRET": "scan-tests-secret"}
    with run_gateway(env, directory) as running:
        yield running


def with_eicar(size: int, where: str) -> bytes:
    """size random bytes with EICAR at the start, the middle or the end."""
    filler = os.urandom(size - len(EICAR))
    at = {"start": 0, "middle": len(filler) // 2 + 4321, "end": len(filler)}[where]
    return filler[:at] + EICAR + filler[at:]


def pending_keys(running: RunningGateway, bucket: str) -> list[str]:
    """What the bucket holds under the staging prefix, asked of its driver
    (a List through the gateway leaves them out)."""
    backend = running.backend(bucket)
    page = running.run(backend.list(ListQuery(page_size=1000, prefix=STAGING)))
    return [meta.key for meta in page.objects]


def assert_not_visible(client: Client, bucket: str, key: str) -> None:
    try:
        client.head(key, bucket=bucket)
    except NotFound:
        pass
    else:
        raise AssertionError(f"{bucket}/{key} is visible")
    assert key not in [info.key for info in client.list(bucket=bucket)]


def assert_quarantined(client: Client, bucket: str, key: str, data: bytes) -> None:
    """bucket/key is in quarantine, holding data, marked infected by clamd
    with the EICAR body signature, and names where it came from."""
    where = f"{bucket}/{key}"
    info = client.head(where, bucket=QUARANTINE)
    assert info.metadata["scan"] == "infected"
    assert info.metadata["scan-signature"] == EICAR_BODY_SIGNATURE
    assert info.metadata["scan-scanner"].startswith("ClamAV ")
    assert info.metadata["scan-time"]
    assert (info.metadata["quarantine-from-bucket"], info.metadata["quarantine-from-key"]) == (
        bucket,
        key,
    )
    assert client.get_bytes(where, bucket=QUARANTINE) == data
