"""The clients' SHA-256: none of their own by default (the object's is the
gateway's, when its bucket computes one); with verify_sha256 (per client,
per call, and the CLI's put and get --verify-sha256) their own, sent for the
gateway to check on upload, compared with the object's on download. Against
real gateways, and a fake one that reports a SHA-256 the data does not have
(test_client_failures.py for downloads)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from storagegw import AsyncClient, Client, errors
from tests.client.cli_command import run
from tests.client.failing_storage import FakeStorage
from tests.conftest import RunningGateway
from tests.rpc_calls import crc

MiB = 1024 * 1024


@pytest.fixture(params=["local", "memory"])
def on_request(
    request: pytest.FixtureRequest, gateway_factory: Callable[..., RunningGateway]
) -> RunningGateway:
    """A gateway whose default bucket computes SHA-256 only on request."""
    return gateway_factory(STORAGE_BACKEND=request.param, GATEWAY_SHA256="on_request")


@pytest.fixture
def data() -> bytes:
    return os.urandom(3 * MiB + 17)


def test_by_default_the_client_sends_no_sha256(on_request: RunningGateway, data: bytes) -> None:
    # Had the client sent one, the gateway would have checked and kept it.
    with Client(on_request.target, timeout=30) as client:
        for info in (
            client.put_bytes("bytes", data),
            client.put_file("plain", data, resumable=False),
            client.put_file("resumable", data, resumable=True),
        ):
            assert (info.size, info.crc32c, info.sha256) == (len(data), crc(data), None)
        assert client.get_bytes("resumable") == data


def test_verify_sha256_per_call(on_request: RunningGateway, data: bytes) -> None:
    digest = hashlib.sha256(data).digest()
    with Client(on_request.target, timeout=30) as client:
        assert client.put_bytes("bytes", data, verify_sha256=True).sha256 == digest
        assert client.put_file("plain", data, resumable=False, verify_sha256=True).sha256 == digest
        info = client.put_file("resumable", data, resumable=True, verify_sha256=True)
        assert info.sha256 == digest
        assert client.head("resumable").sha256 == digest


def test_downloads_verify_sha256_against_a_real_gateway(
    on_request: RunningGateway, data: bytes, tmp_path: Path
) -> None:
    """The hashed download matches a gateway's SHA-256, in one stream where
    parallel ranges would read it; an object without one (its bucket
    computes it on request) has nothing to compare, and downloads all the same."""
    digest = hashlib.sha256(data).digest()
    with Client(on_request.target, timeout=30, verify_sha256=True) as client:
        client.put_bytes("hashed", data)
        client.put_bytes("plain", data, verify_sha256=False)
        assert client.get_bytes("hashed") == data
        info = client.download_file("hashed", tmp_path / "h", parallel_threshold=MiB)
        assert (info.sha256, (tmp_path / "h").read_bytes()) == (digest, data)
        with client.open("plain") as reader:
            assert reader.read() == data
        assert client.download_file("plain", tmp_path / "p", parallel_threshold=MiB).sha256 is None
        assert (tmp_path / "p").read_bytes() == data


def test_verify_sha256_per_client_and_overridden_per_call(
    on_request: RunningGateway, data: bytes
) -> None:
    digest = hashlib.sha256(data).digest()
    with Client(on_request.target, timeout=30, verify_sha256=True) as client:
        assert client.put_bytes("k", data).sha256 == digest
        assert client.put_bytes("k", data, verify_sha256=False).sha256 is None


async def test_async_client_verify_sha256(on_request: RunningGateway, data: bytes) -> None:
    digest = hashlib.sha256(data).digest()
    async with AsyncClient(on_request.target, timeout=30) as client:
        assert (await client.put_file("a", data, resumable=True)).sha256 is None
        info = await client.put_file("b", data, resumable=True, verify_sha256=True)
        assert info.sha256 == digest


def test_resume_upload_with_verify_sha256(on_request: RunningGateway, data: bytes) -> None:
    digest = hashlib.sha256(data).digest()
    with Client(on_request.target, timeout=30) as client:
        session = client.start_upload("asked", size=len(data), verify_sha256=True)
        assert client.resume_upload(session.upload_id, data, verify_sha256=True).sha256 == digest
        # An upload started without it cannot check a SHA-256 at the end: refused, not ignored.
        session = client.start_upload("unasked", size=len(data))
        with pytest.raises(errors.InvalidArgument, match="compute_sha256"):
            client.resume_upload(session.upload_id, data, verify_sha256=True)
        assert not client.exists("unasked")


def test_on_an_always_bucket_the_object_has_the_gateway_sha256(
    gateway_factory: Callable[..., RunningGateway], data: bytes
) -> None:
    running = gateway_factory(STORAGE_BACKEND="memory")  # the default: always
    with Client(running.target, timeout=30) as client:
        info = client.put_file("k", data, resumable=True)
        assert info.sha256 == hashlib.sha256(data).digest()


def test_verify_sha256_catches_a_gateway_sha256_mismatch(
    fake: tuple[FakeStorage, str],
) -> None:
    servicer, target = fake
    servicer.misreport_sha256 = True  # every chunk and the CRC32C are intact
    data = os.urandom(5000)
    with Client(target, timeout=10) as client:
        with pytest.raises(errors.ChecksumMismatch, match="sha256"):
            client.put_bytes("k", data, verify_sha256=True)
        # Without it the client computes none: the gateway's is taken as reported.
        info = client.put_bytes("k", data)
        assert info.sha256 == hashlib.sha256(data + b"!").digest()


async def test_async_verify_sha256_catches_a_gateway_sha256_mismatch(
    fake: tuple[FakeStorage, str],
) -> None:
    servicer, target = fake
    servicer.misreport_sha256 = True
    async with AsyncClient(target, timeout=10, verify_sha256=True) as client:
        with pytest.raises(errors.ChecksumMismatch, match="sha256"):
            await client.put_bytes("k", os.urandom(5000))


def test_cli_put_verify_sha256(on_request: RunningGateway, data: bytes, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(data)
    run(on_request.target, "put", str(source), "plain")
    run(on_request.target, "put", "--verify-sha256", str(source), "checked")
    run(on_request.target, "put", "--resume", "--verify-sha256", str(source), "resumed")
    stat = {
        key: json.loads(run(on_request.target, "stat", key, "--json").stdout)["sha256"]
        for key in ("plain", "checked", "resumed")
    }
    digest = hashlib.sha256(data).hexdigest()
    assert stat == {"plain": None, "checked": digest, "resumed": digest}
