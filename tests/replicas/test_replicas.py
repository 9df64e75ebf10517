"""Two gateway processes as replicas of one service, on real parts.

Over Ceph RGW, reached through HAProxy (HTTP/2 to both replicas) or through
the client's own gRPC round_robin over both addresses: 32 concurrent
resumable uploads of 64 MiB while one replica is killed with SIGKILL mid-way
all complete through the other, byte-exact, and leave no multipart upload or
upload record behind. And a signed URL made by one replica is served by the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from storagegw import Client, RetryPolicy
from tests.big_data import BIG_DATA
from tests.ceph_rgw import CephRgw
from tests.conftest import CLI_PATH, S3_TEST_BUCKET, GatewayProcess, backend_env, gateway_process
from tests.haproxy import HaProxy
from tests.servers import free_port

MiB = 1024 * 1024
SECRET = "replicas-test-url-secret"
UPLOADS = 32
# 64 MiB each, 2 GiB per route: 13 S3 parts (5 MiB) per upload, so the kill
# lands mid-way through uploads on both replicas (which the test waits for).
# The test Ceph keeps objects in a memstore OSD of 4 GiB (RAM): one route's
# 2 GiB fits, not two, so each route frees it afterwards (ceph_env).
SIZE = 64 * MiB
BLOCK = MiB  # how the test writes and reads files, a block at a time


@dataclass
class Replica:
    process: GatewayProcess
    metrics_port: int

    def metric(self, name: str) -> float:
        """The sum of every sample of a metric on the replica's /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((name + " ", name + "{"))
        )

    def logged_calls(self, method: str) -> int:
        """How many calls to `method` the replica's access log holds."""
        count = 0
        for line in list(self.process.log_lines):
            try:
                count += json.loads(line).get("rpc_method") == method
            except ValueError:
                continue
        return count


@contextmanager
def replicas(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    """Two gateway processes with the same settings (secret and backend)."""
    with ExitStack() as stack:
        started = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            port = free_port()
            metrics = {"GATEWAY_METRICS_LISTEN": f"127.0.0.1:{port}"}
            process = stack.enter_context(gateway_process(tmp_path / name, **env, **metrics))
            started.append(Replica(process, port))
        yield started[0], started[1]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Poll an observable condition (bounded), instead of sleeping a guess."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not seen within {timeout} s: {what}")


def write_random_file(path: Path, size: int) -> str:
    """Fill path with `size` random bytes; their SHA-256 (hex)."""
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for _ in range(0, size, BLOCK):
            block = os.urandom(min(BLOCK, size - file.tell()))
            digest.update(block)
            file.write(block)
    return digest.hexdigest()


def read_back(storage: Client, key: str) -> str:
    """The SHA-256 (hex) of the object as the gateway serves it."""
    digest = hashlib.sha256()
    with storage.open(key) as reader:
        for chunk in reader:
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture
def ceph_env(request: pytest.FixtureRequest, ceph_rgw: CephRgw) -> Iterator[dict[str, str]]:
    """Settings of replicas over an empty bucket on the test Ceph, with the
    memstore OSD's space freed before the test and again after it.

    Deleting an object frees only its first 4 MiB in RGW at once; the rest
    waits for the garbage collector (hours by default) and holds memstore space
    meanwhile. Collecting before gives this test what earlier tests deleted;
    emptying and collecting after, even when the test fails, gives later tests
    back the 2 GiB this one stored.
    """
    env = {**backend_env(request, "s3-ceph"), "STORAGE_URL_SECRET": SECRET}
    ceph_rgw.collect_garbage()
    try:
        yield env
    finally:
        ceph_rgw.reset()
        ceph_rgw.collect_garbage()


@pytest.fixture
def sources(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The files to upload, under tmp_path/sources: {key: SHA-256 (hex)}.
    Deleted afterwards (2 GiB that pytest would otherwise keep for three runs)."""
    directory = tmp_path / "sources"
    directory.mkdir()
    try:
        yield {
            f"replicated/{n:02}.bin": write_random_file(directory / f"{n:02}.bin", SIZE)
            for n in range(UPLOADS)
        }
    finally:
        shutil.rmtree(directory)


def s3_leftovers(ceph: CephRgw) -> tuple[list[str], list[str]]:
    """The bucket's object keys and its unfinished multipart uploads' keys."""
    client = ceph.client()
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=S3_TEST_BUCKET):
        keys += [item["Key"] for item in page.get("Contents", [])]
    uploads = client.list_multipart_uploads(Bucket=S3_TEST_BUCKET).get("Uploads", [])
    return sorted(keys), sorted(upload["Key"] for upload in uploads)


# A mark, not a skip in the test: the fixtures' 2 GiB are not made for nothing.
needs_haproxy = pytest.mark.skipif(
    not HaProxy.available(),
    reason="haproxy not installed; run scripts/install-test-servers.sh (make test does)",
)


@BIG_DATA
@pytest.mark.parametrize("route", [pytest.param("haproxy", marks=needs_haproxy), "round_robin"])
def test_uploads_survive_a_replica_killed_mid_way(
    ceph_rgw: CephRgw,
    ceph_env: dict[str, str],
    sources: dict[str, str],
    tmp_path: Path,
    route: str,
) -> None:
    env, expected, ceph = ceph_env, sources, ceph_rgw
    directory = tmp_path / "sources"
    # Retries come quickly and often enough to outlast the seconds a dead
    # replica takes to leave the rotation (HAProxy's check, gRPC's reconnect).
    retry = RetryPolicy(max_attempts=20, initial_backoff=0.2, max_backoff=2)
    with ExitStack() as stack:
        a, b = stack.enter_context(replicas(env, tmp_path))
        if route == "haproxy":
            proxy = HaProxy([a.process.grpc_port, b.process.grpc_port], tmp_path)
            storage = Client(stack.enter_context(proxy).target, retry=retry)
        else:
            target = f"ipv4:127.0.0.1:{a.process.grpc_port},127.0.0.1:{b.process.grpc_port}"
            storage = Client(target, load_balancing="round_robin", retry=retry)
        stack.enter_context(storage)

        def upload(key: str) -> str:
            info = storage.put_file(key, str(directory / key.split("/")[1]), resumable=True)
            assert info.sha256 is not None
            return info.sha256.hex()

        with ThreadPoolExecutor(max_workers=UPLOADS) as pool:
            stored = pool.map(upload, expected)
            # Every upload started, and both replicas mid-way through some:
            # streams open, parts already in Ceph. Then one dies without a
            # chance to clean up.
            wait_until(
                lambda: a.logged_calls("StartUpload") + b.logged_calls("StartUpload") >= UPLOADS,
                "every upload started",
            )
            for replica in (a, b):
                wait_until(
                    lambda replica=replica: (  # type: ignore[misc]
                        replica.metric("storagegw_streams_active") >= 1
                        and replica.metric("storagegw_resumable_uploads_persisted_bytes_total") > 0
                    ),
                    "both replicas serving uploads with parts persisted",
                )
            a.process.process.kill()
            a.process.process.wait(30)
            checksums = dict(zip(expected, stored, strict=True))

        assert checksums == expected  # what each completed upload verified
        # The killed replica was serving uploads that then continued on the
        # other: a client asks QueryUpload only to resume a broken stream.
        assert b.logged_calls("QueryUpload") > 0
        assert {key: read_back(storage, key) for key in expected} == expected

    _, unfinished = s3_leftovers(ceph)
    # Every multipart upload the killed replica was writing was completed
    # through the other. (One whose StartUpload answer the kill cut off
    # would be retried as a new upload: the crash's leftover, cleanup's job.)
    assert set(unfinished) <= set(expected)
    # A finished upload's record answers late retries until the upload
    # expires; the gateway's cleanup removes it then, and any crash leftover.
    cleanup = subprocess.run(
        [CLI_PATH, "cleanup", "--older-than", "0.001"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cleanup.returncode == 0, cleanup.stderr
    assert s3_leftovers(ceph) == (sorted(expected), [])  # the objects, and nothing else


def test_a_url_signed_by_one_replica_is_served_by_the_other(tmp_path: Path) -> None:
    # Signed URLs the gateway serves itself are the local backend's: its two
    # replicas here share one directory (on Ceph or GCS the URL is the store's).
    env = {"STORAGE_BACKEND": "local", "STORAGE_URL_SECRET": SECRET}
    with (
        gateway_process(tmp_path, **env) as a,
        gateway_process(tmp_path, **env) as b,
        Client(a.target) as through_a,
        Client(b.target) as through_b,
        httpx.Client(timeout=30) as http,
    ):
        through_b.put_bytes("signed/by-a.txt", b"made through b")
        signed = through_a.sign_url("signed/by-a.txt")
        assert f":{a.http_port}/" in signed.url
        on_b = signed.url.replace(f":{a.http_port}/", f":{b.http_port}/", 1)
        answer = http.get(on_b, headers=signed.headers)
        assert (answer.status_code, answer.content) == (200, b"made through b")

        upload = through_a.sign_url("signed/put-on-b.txt", method="PUT")
        on_b = upload.url.replace(f":{a.http_port}/", f":{b.http_port}/", 1)
        answer = http.put(on_b, content=b"sent to b", headers=upload.headers)
        assert answer.status_code in (200, 201)
        assert through_a.get_bytes("signed/put-on-b.txt") == b"sent to b"

        # A tampered signature is refused: replica b really checks what it serves.
        forged = on_b.replace("X-Sgw-Signature=", "X-Sgw-Signature=0", 1)
        assert http.put(forged, content=b"x", headers=upload.headers).status_code == 403
