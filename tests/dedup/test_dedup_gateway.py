"""A dedup bucket behind a real gateway: Put, Get, Copy and resumable
uploads through the client, reserved keys refused, the statistics RPC and
`storagegw stat` without a key, and the garbage collection sweep."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gateway import dedup_sweep
from storagegw import Client
from storagegw.errors import InvalidKey
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests import drivers
from tests.conftest import CLI_PATH, RunningGateway, run_gateway
from tests.rpc_calls import call_error, put_messages
from tests.telemetry.scrape import scrape, total

MIB = 1024 * 1024


@pytest.fixture(params=["local-dedup", "s3-ceph-dedup"])
def dedup_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    env = {**drivers.backend_env(request, request.param), "GATEWAY_DEDUP_SWEEP_INTERVAL": "0"}
    with run_gateway(env, tmp_path) as running:
        running.backend_name = request.param
        yield running


@pytest.fixture
def client(dedup_gateway: RunningGateway) -> Iterator[Client]:
    with Client(dedup_gateway.target) as connected:
        yield connected


def _blobs(running: RunningGateway) -> int:
    stats = running.run(running.backend().capabilities.dedup.dedup_stats())
    return int(stats.blobs)


def test_puts_gets_and_ranges(client: Client, dedup_gateway: RunningGateway) -> None:
    data = os.urandom(MIB + 17)
    for i in range(4):
        info = client.put_bytes(f"same/{i}", data, content_type="text/x", metadata={"i": str(i)})
        assert (info.size, info.content_type, dict(info.metadata)) == (
            len(data),
            "text/x",
            {"i": str(i)},
        )
    assert _blobs(dedup_gateway) == 1
    assert client.get_bytes("same/2") == data
    assert client.get_bytes("same/3", offset=1000, length=5000) == data[1000:6000]
    listed = list(client.list("same/"))
    assert [(o.key, o.size) for o in listed] == [(f"same/{i}", len(data)) for i in range(4)]


def test_copy_moves_no_bytes(client: Client, dedup_gateway: RunningGateway) -> None:
    client.put_bytes("src", b"payload" * 1000)
    copied = client.copy("src", "dst")
    assert copied.size == 7000
    assert client.get_bytes("dst") == b"payload" * 1000
    assert _blobs(dedup_gateway) == 1


def test_resumable_upload_into_a_dedup_bucket(
    client: Client, dedup_gateway: RunningGateway
) -> None:
    data = os.urandom(6 * MIB)
    client.put_bytes("first", data)
    upload = client.start_upload("second", size=len(data))
    part = client.write_upload(upload.upload_id, data[: 5 * MIB], offset=0)
    persisted = part.persisted_size  # a stream's worth, perhaps less than it sent
    done = client.write_upload(upload.upload_id, data[persisted:], offset=persisted, finish=True)
    assert done.complete
    assert done.object is not None
    assert done.object.size == len(data)
    queried = client.query_upload(upload.upload_id)
    assert queried.object is not None
    assert queried.object.size == len(data)
    assert client.get_bytes("second") == data
    assert _blobs(dedup_gateway) == 1


def test_reserved_keys_are_refused(client: Client) -> None:
    with pytest.raises(InvalidKey):
        client.put_bytes(".cas/tmp/x", b"mine")
    with pytest.raises(InvalidKey):
        client.head(".cas/live/x")


def test_stats_and_the_cli(client: Client, dedup_gateway: RunningGateway) -> None:
    data = b"x" * 10_000
    for i in range(10):
        client.put_bytes(f"k{i}", data)
    stats = client.bucket_stats()
    assert stats.dedup
    assert (stats.objects, stats.logical_bytes) == (10, 100_000)
    assert (stats.blobs, stats.stored_bytes, stats.saved_bytes) == (1, 10_000, 90_000)
    assert stats.dedup_ratio == 10.0
    shown = subprocess.run(
        [CLI_PATH, "--target", dedup_gateway.target, "stat", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(shown.stdout)["saved_bytes"] == 90_000
    text = subprocess.run(
        [CLI_PATH, "--target", dedup_gateway.target, "stat"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "dedup_ratio: 10.0" in text.stdout.splitlines()


def test_the_sweep_collects_what_no_object_names(
    client: Client, dedup_gateway: RunningGateway
) -> None:
    client.put_bytes("kept", b"kept bytes")
    client.put_bytes("gone", b"deleted bytes")
    client.delete("gone")
    buckets = dedup_gateway.gateway.buckets
    later = time.time() + 7200
    results = dedup_gateway.run(dedup_sweep.sweep_once(buckets, now=later))
    assert [r.blobs_deleted for r in results.values()] == [1]
    assert client.get_bytes("kept") == b"kept bytes"
    assert client.bucket_stats().blobs == 1


def test_the_sweep_sets_the_gauges(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env = {
        **drivers.backend_env(request, "local-dedup"),
        "GATEWAY_DEDUP_SWEEP_INTERVAL": "0",
        "GATEWAY_METRICS_LISTEN": "127.0.0.1:0",
    }
    with run_gateway(env, tmp_path) as running, Client(running.target) as client:
        for i in range(3):
            client.put_bytes(f"k{i}", b"y" * 1000)
        gateway = running.gateway
        running.run(dedup_sweep.sweep_once(gateway.buckets, report=gateway.note_dedup_sweep))
        assert gateway.telemetry is not None
        samples = scrape(gateway.telemetry.metrics_port)
        assert total(samples, "storagegw_dedup_logical_bytes") == 3000
        assert total(samples, "storagegw_dedup_stored_bytes") == 1000
        assert total(samples, "storagegw_dedup_saved_bytes") == 2000


def test_the_door_refuses_reserved_keys_on_every_route(client: Client) -> None:
    with pytest.raises(InvalidKey):
        list(client.list(".cas/"))
    with pytest.raises(InvalidKey):
        client.start_upload(".cas/tmp/x")
    with pytest.raises(InvalidKey):
        client.sign_url(".cas/ab/x")
    client.put_bytes("k", b"v")
    with pytest.raises(InvalidKey):
        client.copy("k", ".cas/ab/x")


def test_a_put_promising_its_sha256_up_front(client: Client, dedup_gateway: RunningGateway) -> None:
    data = os.urandom(300_000)
    client.put_bytes("one", data, verify_sha256=True)
    again = client.put_bytes("two", data, verify_sha256=True, metadata={"n": "2"})
    assert (again.size, dict(again.metadata)) == (len(data), {"n": "2"})
    assert client.get_bytes("two") == data
    assert _blobs(dedup_gateway) == 1


def test_a_false_promise_of_stored_content_is_refused(
    client: Client, dedup_gateway: RunningGateway
) -> None:
    """Naming stored content's SHA-256 without sending its bytes gets no
    reference to it: the bytes are checked against the promise."""
    stored = b"someone else's bytes" * 50
    client.put_bytes("theirs", stored)
    promised = pb.ObjectChecksums(sha256=hashlib.sha256(stored).digest())
    spec = pb.PutSpec(key="mine", expected_checksums=promised)
    with grpc.insecure_channel(dedup_gateway.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        messages = put_messages("mine", b"other bytes", spec=spec, with_checksums=False)
        code, reason, _ = call_error(stub.Put, messages)
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH")
    assert not client.exists("mine")
