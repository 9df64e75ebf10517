"""Resumable uploads into a compressed bucket, through the gateway (on a local
disk, Ceph RGW and fake-gcs-server): stored compressed as a Put stores them,
as the store's own bytes show once decompressed with zstandard; resumed after
a stream stops early, and after a restart, from an offset in original bytes."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from gateway import config as config_module
from gateway.backends.base import Backend
from gateway.domain.checksums import crc32c
from gateway.domain.objects import ObjectMeta
from gateway.layers.compression.layouts import ENCODING
from gateway.layers.compression.seekable import parse_tail
from storagegw import ChecksumMismatch, Client, ObjectNotFound, RetryPolicy, UploadNotFound
from tests.compression.stored import json_log, noise
from tests.conftest import RunningGateway, run_gateway
from tests.drivers import ZSTD_NAMES, backend_env, get
from tests.servers import s3_client

MIB = 1024 * 1024
SECRET = "compressed-resumable-test-secret"


@dataclass
class Setup:
    name: str
    env: dict[str, str]
    data_dir: Path
    running: RunningGateway


@contextlib.contextmanager
def _gateway(name: str, env: dict[str, str], data_dir: Path) -> Iterator[RunningGateway]:
    with contextlib.ExitStack() as stack:
        if name.startswith("gcs"):
            # fake-gcs-server through the proxy that answers session status
            # queries as GCS does (tests.conftest.resumable_gateway).
            from tests.gcs_proxy import RecordingProxy

            proxy = stack.enter_context(RecordingProxy(env["STORAGE_EMULATOR_HOST"]))
            proxy.emulate_sessions = proxy.check_upload_hash = True
            env = {**env, "STORAGE_EMULATOR_HOST": proxy.endpoint}
        yield stack.enter_context(run_gateway(env, data_dir))


@pytest.fixture(params=ZSTD_NAMES)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    env = {**backend_env(request, request.param), "STORAGE_URL_SECRET": SECRET}
    with _gateway(request.param, env, tmp_path) as running:
        yield Setup(request.param, env, tmp_path, running)


@pytest.fixture
def client(setup: Setup) -> Iterator[Client]:
    with Client(setup.running.target, timeout=120, retry=RetryPolicy.no_retry()) as c:
        yield c


@functools.cache
def big_log() -> bytes:
    return json_log(40 * MIB + 4321, seed=11)


def _stored(setup: Setup, key: str) -> tuple[ObjectMeta, bytes]:
    """The object as the store holds it, read by the driver alone (no
    compression layer): its metadata and bytes."""
    settings = {k: v for k, v in setup.env.items() if not k.startswith("GATEWAY_COMPRESSION")}
    config = config_module.load({"STORAGE_BASE_PATH": str(setup.data_dir), **settings})
    plain: Backend = config.buckets[config.default_bucket].build()

    async def read() -> tuple[ObjectMeta, bytes]:
        try:
            return await plain.head(key), await get(plain, key, chunk_size=MIB)
        finally:
            await plain.close()

    result: tuple[ObjectMeta, bytes] = setup.running.run(read())
    return result


def _decompressed(stored: bytes) -> bytes:
    """The stored bytes through zstandard, as any zstd reader sees them."""
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(stored), read_across_frames=True)
    return reader.read()


def _from_ceph(env: dict[str, str], key: str) -> bytes:
    """The object's bytes as Ceph RGW serves them to any S3 client."""
    s3 = s3_client(
        env["STORAGE_S3_ENDPOINT"], env["STORAGE_S3_ACCESS_KEY"], env["STORAGE_S3_SECRET_KEY"]
    )
    body: bytes = s3.get_object(Bucket=env["STORAGE_S3_BUCKET"], Key=key)["Body"].read()
    return body


def assert_stored_compressed(setup: Setup, key: str, data: bytes) -> None:
    meta, stored = _stored(setup, key)
    if setup.name == "s3-ceph-zstd":
        assert _from_ceph(setup.env, key) == stored
    assert meta.metadata[ENCODING] == "zstd-seekable"
    assert len(stored) < len(data) / 3
    assert _decompressed(stored) == data
    layout = parse_tail(len(stored), stored[-64 * 1024 :])
    assert [frame.size for frame in layout.frames[:-1]] == [MIB] * (len(layout.frames) - 1)
    assert (layout.original.size, layout.original.crc32c) == (len(data), crc32c(data))
    if shutil.which("zstd"):
        path = setup.data_dir / "stored.zst"
        path.write_bytes(stored)
        result = subprocess.run(["zstd", "-d", "-c", str(path)], capture_output=True, check=True)
        assert result.stdout == data


def assert_reads_the_original(client: Client, key: str, data: bytes) -> None:
    head = client.head(key)
    assert (head.size, head.crc32c) == (len(data), crc32c(data))
    assert client.get_bytes(key) == data
    offset = 3 * MIB - 100  # across three frame boundaries
    length = 2 * MIB + 200
    assert client.get_bytes(key, offset=offset, length=length) == data[offset:][:length]
    (listed,) = [entry for entry in client.list(key) if entry.key == key]
    assert listed.size == len(data)


def test_put_file_over_8_mib_is_stored_compressed(
    setup: Setup, client: Client, tmp_path: Path
) -> None:
    data = json_log(20 * MIB + 999, seed=3)
    path = tmp_path / "app.log.json"
    path.write_bytes(data)
    info = client.put_file("logs/app.json", path, content_type="application/json")
    assert (info.size, info.crc32c, info.sha256) == (
        len(data),
        crc32c(data),
        hashlib.sha256(data).digest(),
    )
    assert info.metadata == {}
    assert_reads_the_original(client, "logs/app.json", data)
    assert_stored_compressed(setup, "logs/app.json", data)


def test_a_stream_stopped_early_resumes_from_an_original_offset(
    setup: Setup, client: Client
) -> None:
    data = big_log()
    session = client.start_upload("r.json", content_type="application/json")
    sent = 38 * MIB + 17
    first = client.write_upload(session.upload_id, data[:sent], offset=0, finish=False)
    assert not first.complete
    status = client.query_upload(session.upload_id)
    persisted = status.persisted_size
    assert persisted == first.persisted_size
    # Resumable at a frame's start, in the bytes the client sent.
    assert persisted % MIB == 0
    assert persisted <= sent
    with pytest.raises(ObjectNotFound):
        client.head("r.json")
    if setup.name != "local-zstd":  # the local driver persists 32 MiB units of stored bytes
        assert persisted > 0
        # The store holds part of the frame resumed from (its unit ends within
        # one): other bytes from there are refused, and the upload stays.
        other = bytes([data[persisted] ^ 1]) + data[persisted + 1 :]
        with pytest.raises(ChecksumMismatch, match="not those the upload holds"):
            client.write_upload(session.upload_id, other, offset=persisted, finish=True)
        assert client.query_upload(session.upload_id).persisted_size == persisted
    done = client.write_upload(session.upload_id, data[persisted:], offset=persisted, finish=True)
    assert done.complete
    assert done.object is not None
    assert (done.object.size, done.object.crc32c) == (len(data), crc32c(data))
    assert done.persisted_size == len(data)
    again = client.query_upload(session.upload_id)
    assert again.complete
    assert again.object is not None
    assert again.object.size == len(data)
    assert_reads_the_original(client, "r.json", data)
    assert_stored_compressed(setup, "r.json", data)


def test_abort_leaves_nothing(setup: Setup, client: Client) -> None:
    data = big_log()
    session = client.start_upload("a.json", content_type="application/json")
    client.write_upload(session.upload_id, data[: 30 * MIB], offset=0, finish=False)
    assert client.abort_upload(session.upload_id)
    with pytest.raises(UploadNotFound):
        client.write_upload(session.upload_id, data, offset=0, finish=True)
    with pytest.raises(ObjectNotFound):
        client.head("a.json")
    settings = {k: v for k, v in setup.env.items() if not k.startswith("GATEWAY_COMPRESSION")}
    config = config_module.load({"STORAGE_BASE_PATH": str(setup.data_dir), **settings})
    plain = config.buckets[config.default_bucket].build()

    async def unfinished() -> int:
        try:
            cleaner = plain.capabilities.cleaner
            assert cleaner is not None
            return await cleaner.abort_stale_uploads(0)
        finally:
            await plain.close()

    assert setup.running.run(unfinished()) == 0  # no upload left behind to sweep


def test_incompressible_and_never_compressed_types(setup: Setup, client: Client) -> None:
    data = noise(3 * MIB + 5)
    session = client.start_upload("n.txt", content_type="text/plain")
    done = client.write_upload(session.upload_id, data, offset=0, finish=True)
    assert done.object is not None
    assert done.object.size == len(data)
    assert client.get_bytes("n.txt", offset=MIB - 3, length=MIB) == data[MIB - 3 :][:MIB]
    meta, stored = _stored(setup, "n.txt")
    # Marked from the upload's start: its frames hold the bytes in raw blocks.
    assert meta.metadata[ENCODING] == "zstd-seekable"
    assert len(data) < len(stored) < len(data) + 1024
    assert _decompressed(stored) == data

    image = noise(2 * MIB)
    session = client.start_upload("p.png", content_type="image/png")
    client.write_upload(session.upload_id, image, offset=0, finish=True)
    meta, stored = _stored(setup, "p.png")
    assert ENCODING not in meta.metadata
    assert stored == image
    assert client.get_bytes("p.png") == image


def test_a_small_resumable_upload_is_stored_compressed(setup: Setup, client: Client) -> None:
    data = json_log(MIB // 2 + 77)
    session = client.start_upload("s.json", content_type="application/json", size=len(data))
    done = client.write_upload(session.upload_id, data, offset=0, finish=True)
    assert done.object is not None
    assert (done.object.size, done.object.crc32c) == (len(data), crc32c(data))
    assert client.get_bytes("s.json", offset=5, length=10) == data[5:15]
    meta, stored = _stored(setup, "s.json")
    assert meta.metadata[ENCODING] == "zstd-seekable"
    assert len(stored) < len(data) / 3
    assert _decompressed(stored) == data


def hex_log(size: int) -> bytes:
    """Log lines of random ids: compressible about twice, so that the local
    driver's 32 MiB checkpoint units come within a test-sized upload."""
    raw = os.urandom(size // 2).hex().encode()
    lines = [b'{"id":"%s"}\n' % raw[at : at + 48] for at in range(0, len(raw), 48)]
    return b"".join(lines)[:size]


def test_an_upload_resumes_after_a_restart(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    env = {**backend_env(request, "local-zstd"), "STORAGE_URL_SECRET": SECRET}
    data = hex_log(96 * MIB)
    sent = 90 * MIB
    with _gateway("local-zstd", env, tmp_path) as running, Client(running.target) as client:
        session = client.start_upload("restart.json", content_type="application/json")
        first = client.write_upload(session.upload_id, data[:sent], offset=0, finish=False)
    with _gateway("local-zstd", env, tmp_path) as running, Client(running.target) as client:
        status = client.query_upload(session.upload_id)
        persisted = status.persisted_size
        assert persisted == first.persisted_size
        assert 0 < persisted <= sent
        assert persisted % MIB == 0
        client.write_upload(session.upload_id, data[persisted:], offset=persisted, finish=True)
        assert client.get_bytes("restart.json") == data
        offset = persisted - 10
        assert client.get_bytes("restart.json", offset=offset, length=20) == data[offset:][:20]
        setup = Setup("local-zstd", env, tmp_path, running)
        meta, stored = _stored(setup, "restart.json")
        assert meta.metadata[ENCODING] == "zstd-seekable"
        assert len(stored) < len(data)
        assert _decompressed(stored) == data


def test_many_streams_each_resuming_within_a_frame(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # The memory driver persists 256 KiB units: most end within a compressed
    # frame, so nearly every stream resumes by compressing one again.
    env = {
        **backend_env(request, "memory"),
        "STORAGE_URL_SECRET": SECRET,
        "GATEWAY_COMPRESSION": "zstd",
    }
    data = json_log(12 * MIB + 321, seed=5)
    with _gateway("memory", env, tmp_path) as running, Client(running.target) as client:
        session = client.start_upload("m.json", content_type="application/json")
        persisted, offsets = 0, []
        for stop in range(2 * MIB + 7, len(data), 2 * MIB + 7):
            status = client.write_upload(
                session.upload_id, data[persisted:stop], offset=persisted, finish=False
            )
            assert status.persisted_size % MIB == 0
            assert persisted <= status.persisted_size <= stop
            persisted = status.persisted_size
            offsets.append(persisted)
        assert len(set(offsets)) > 3  # the streams got on, each from a frame's start
        done = client.write_upload(
            session.upload_id, data[persisted:], offset=persisted, finish=True
        )
        assert done.object is not None
        assert (done.object.size, done.object.crc32c) == (len(data), crc32c(data))
        assert_reads_the_original(client, "m.json", data)
