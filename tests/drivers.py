"""The drivers the tests run on, and helpers for the driver-level tests
(write, read and list through the Protocol).

DRIVERS is the one table of them: each entry's name (the test id), how its
store is started and emptied, and the gateway settings that put a bucket on
it. The gRPC-level fixtures (tests/conftest.py: `gateway`, backend_env) and
the driver-level ones (open_backend) both read it, and both build the driver
the same way: configuration (gateway.config.load), then the registry
(BucketConfig.build).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway import config as config_module
from gateway.backends.base import Backend, ObjectWriter, PresigningBackend
from gateway.domain.checksums import crc32c
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import (
    Checksums,
    Conditions,
    ListQuery,
    ObjectMeta,
    Presigned,
    PresignRequest,
    WriteOptions,
)
from tests.ceph_rgw import CephRgw
from tests.fake_gcs_server import FakeGcsServer
from tests.moto_server import MotoServer
from tests.servers import make_bucket

# The S3 bucket the S3 drivers use (emptied and made again for each test).
S3_TEST_BUCKET = "sgw-conformance"
# Where the driver-level tests put every key, on the stores that take a
# prefix: each key maps below it, and nothing escapes it.
KEY_PREFIX = "under/a/prefix/"


@dataclass(frozen=True)
class DriverUnderTest:
    # The test id: memory, local, s3-moto, s3-ceph, gcs.
    name: str
    # Makes a fresh, empty store (its server started once per session, by
    # the fixture it asks for) and returns the settings of a gateway whose
    # default bucket is on it: STORAGE_* variables, which an in-process
    # gateway and a `python -m gateway` process take alike. The local
    # driver's store is a directory under the gateway's STORAGE_BASE_PATH
    # (the test's tmp dir), the memory driver's the gateway's own memory.
    start: Callable[[pytest.FixtureRequest], dict[str, str]]
    # The variable that puts every key under a prefix, where the store has one.
    prefix_setting: str = ""


def _in_process(kind: str) -> Callable[[pytest.FixtureRequest], dict[str, str]]:
    return lambda request: {"STORAGE_BACKEND": kind}


def _zstd(
    start: Callable[[pytest.FixtureRequest], dict[str, str]],
) -> Callable[[pytest.FixtureRequest], dict[str, str]]:
    """start's bucket, compressed: every type that may be (so that the suite's
    octet-stream objects are too)."""
    compressed = {"GATEWAY_COMPRESSION": "zstd", "GATEWAY_COMPRESSION_TYPES": "*/*"}
    return lambda request: {**start(request), **compressed}


def _s3(server_fixture: str) -> Callable[[pytest.FixtureRequest], dict[str, str]]:
    def start(request: pytest.FixtureRequest) -> dict[str, str]:
        server: MotoServer | CephRgw = request.getfixturevalue(server_fixture)
        server.reset()
        make_bucket(server.endpoint, server.access_key, server.secret_key, S3_TEST_BUCKET)
        return {
            "STORAGE_BACKEND": "s3",
            "STORAGE_S3_BUCKET": S3_TEST_BUCKET,
            "STORAGE_S3_ENDPOINT": server.endpoint,
            "STORAGE_S3_ACCESS_KEY": server.access_key,
            "STORAGE_S3_SECRET_KEY": server.secret_key,
            "STORAGE_S3_REGION": "us-east-1",
            "STORAGE_S3_ADDRESSING_STYLE": "path",
            # Small parts, so that multipart uploads happen at test sizes.
            "STORAGE_S3_PART_SIZE": "5MiB",
        }

    return start


def gcs_env(server: FakeGcsServer, bucket: str, key_file: Path) -> dict[str, str]:
    """Settings of a gateway whose default bucket is GCS bucket `bucket` on server."""
    return {
        "STORAGE_BACKEND": "gcs",
        "STORAGE_GCS_BUCKET": bucket,
        "STORAGE_EMULATOR_HOST": server.endpoint,
        # Requests go to the emulator anonymously; the key only signs URLs.
        "STORAGE_GCS_CREDENTIALS_PATH": str(key_file),
        # Small chunks, so that resumable uploads take several at test sizes (not
        # smaller: fake-gcs-server copies everything received on every chunk).
        "STORAGE_GCS_CHUNK_SIZE": "4MiB",
        "STORAGE_GCS_THREADS": "8",
    }


def _gcs(request: pytest.FixtureRequest) -> dict[str, str]:
    server: FakeGcsServer = request.getfixturevalue("fake_gcs")
    server.reset()
    return gcs_env(server, server.new_bucket(), request.getfixturevalue("gcs_key_file"))


# s3-moto is moto's standalone server (fast, no signature checks), s3-ceph a
# real Ceph RADOS Gateway, gcs fake-gcs-server.
DRIVERS = {
    driver.name: driver
    for driver in (
        DriverUnderTest("memory", _in_process("memory")),
        DriverUnderTest("local", _in_process("local")),
        DriverUnderTest("s3-moto", _s3("moto_server"), "STORAGE_S3_PREFIX"),
        DriverUnderTest("s3-ceph", _s3("ceph_rgw"), "STORAGE_S3_PREFIX"),
        DriverUnderTest("gcs", _gcs, "STORAGE_GCS_PREFIX"),
        # Compressed buckets (gateway/layers/compression) on a local disk, Ceph and GCS:
        # in ZSTD_NAMES, not NAMES (the conformance suite runs them; tests/compression and,
        # for local-zstd, the gRPC-level tests too).
        DriverUnderTest("local-zstd", _zstd(_in_process("local"))),
        DriverUnderTest("s3-ceph-zstd", _zstd(_s3("ceph_rgw")), "STORAGE_S3_PREFIX"),
        DriverUnderTest("gcs-zstd", _zstd(_gcs), "STORAGE_GCS_PREFIX"),
    )
}
ZSTD_NAMES = ["local-zstd", "s3-ceph-zstd", "gcs-zstd"]
NAMES = [name for name in DRIVERS if name not in ZSTD_NAMES]


def _dedup(
    start: Callable[[pytest.FixtureRequest], dict[str, str]],
) -> Callable[[pytest.FixtureRequest], dict[str, str]]:
    return lambda request: {**start(request), "STORAGE_DEDUP": "true"}


# The same stores as dedup buckets (gateway/layers/dedup). They run the
# conformance suite and tests/dedup, not every gateway-level test (NAMES).
DEDUP_DRIVERS = {
    f"{driver.name}-dedup": DriverUnderTest(
        f"{driver.name}-dedup", _dedup(driver.start), driver.prefix_setting
    )
    for driver in (DRIVERS["memory"], DRIVERS["local"], DRIVERS["s3-ceph"])
}
DRIVERS.update(DEDUP_DRIVERS)
DEDUP_NAMES = list(DEDUP_DRIVERS)


def backend_env(request: pytest.FixtureRequest, name: str) -> dict[str, str]:
    """Gateway settings whose default bucket is on driver `name`, in a fresh,
    empty store."""
    return DRIVERS[name].start(request)


def open_backend(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Backend:
    """Driver `name` on a fresh, empty store, every key under KEY_PREFIX
    where the store takes a prefix: built as a gateway builds its default
    bucket's (not yet probed)."""
    driver = DRIVERS[name]
    env = {"STORAGE_BASE_PATH": str(tmp_path), **driver.start(request)}
    if driver.prefix_setting:
        env[driver.prefix_setting] = KEY_PREFIX
    config = config_module.load(env)
    return config.buckets[config.default_bucket].build()


@asynccontextmanager
async def probed_backend(
    request: pytest.FixtureRequest, name: str, tmp_path: Path
) -> AsyncIterator[Backend]:
    """open_backend's driver, probed as a gateway probes it at start, and
    closed on the way out."""
    driver = open_backend(request, name, tmp_path)
    try:
        await driver.probe()
        yield driver
    finally:
        await driver.close()


def patterned_bytes(size: int) -> bytes:
    block = bytes(range(251)) * 4177  # a prime-length pattern: misplaced bytes show
    return (block * (size // len(block) + 1))[:size]


async def cancel_while_writing(writer: ObjectWriter, chunk: int, begun: Callable[[], bool]) -> None:
    """Write chunks of patterned bytes until begun() holds (the store has
    started the upload), then cancel the writing: it must end cancelled."""
    started = asyncio.Event()

    async def stream() -> None:
        while True:
            await writer.write(patterned_bytes(chunk))
            if begun():
                started.set()

    task = asyncio.create_task(stream())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def sums(data: bytes) -> Checksums:
    return Checksums(crc32c(data), hashlib.sha256(data).digest(), len(data))


async def put(
    backend: Backend,
    key: str,
    data: bytes,
    options: WriteOptions | None = None,
    chunk: int = 4096,
) -> ObjectMeta:
    writer = await backend.open_write(key, options or WriteOptions())
    try:
        for i in range(0, len(data), chunk):
            await writer.write(data[i : i + chunk])
        return await writer.commit(sums(data))
    except BaseException:
        await writer.abort()
        raise


async def get(
    backend: Backend, key: str, offset: int = 0, limit: int | None = None, chunk_size: int = 1000
) -> bytes:
    reader = await backend.open_read(key, offset, limit, Conditions())
    try:
        return b"".join([c async for c in reader.chunks(chunk_size)])
    finally:
        await reader.close()


async def list_all(
    backend: Backend, prefix: str = "", delimiter: str = "", page_size: int = 13
) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    prefixes: list[str] = []
    token = ""
    while True:
        page = await backend.list(
            ListQuery(page_size=page_size, prefix=prefix, delimiter=delimiter, page_token=token)
        )
        assert len(page.objects) + len(page.common_prefixes) <= page_size
        keys += [meta.key for meta in page.objects]
        prefixes += page.common_prefixes
        token = page.next_page_token
        if not token:
            return keys, prefixes


async def sign(
    backend: PresigningBackend, key: str, method: str, expires_in_s: int = 300, **options: Any
) -> Presigned:
    """backend.sign_url with every option at its default unless given."""
    return await backend.sign_url(PresignRequest(key, method, expires_in_s, **options))


async def assert_bucket_missing(
    backend: Backend, bucket: str, *more_calls: Coroutine[Any, Any, Any]
) -> None:
    """Every object call on backend (whose store bucket does not exist) is
    BUCKET_NOT_FOUND naming it, and the health probe BACKEND_UNAVAILABLE."""
    calls = [
        backend.head("k"),
        backend.open_read("k", 0, None, Conditions()),
        *more_calls,
        backend.list(ListQuery(page_size=10)),
        backend.delete("k"),
    ]
    for call in calls:
        with pytest.raises(GatewayError) as caught:
            await call
        assert caught.value.reason is Reason.BUCKET_NOT_FOUND
        assert bucket in caught.value.message
    with pytest.raises(GatewayError) as caught:
        await backend.probe()
    assert caught.value.reason is Reason.BACKEND_UNAVAILABLE


def utf8(key: str) -> bytes:
    return key.encode()
