"""Resumable uploads on S3 (moto and Ceph RGW): what the bucket holds while
one is in progress, after commit, abort and cleanup, and what listings show."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.backends.shared.upload_records import RECORDS_PREFIX
from storagegw.v1 import storage_pb2 as pb
from tests.conftest import CLI_PATH, RunningGateway, backend_env, run_gateway
from tests.rpc.resumable_calls import SECRET, MiB, Stub, put, query, segment, start
from tests.rpc_calls import call_error, get
from tests.servers import s3_client

PREFIX = "gw/"


@pytest.fixture(params=["s3-moto", "s3-ceph"])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    return {
        **backend_env(request, request.param),
        "STORAGE_URL_SECRET": SECRET,
        "STORAGE_S3_PREFIX": PREFIX,
    }


@pytest.fixture
def gateway(env: dict[str, str], tmp_path: Path) -> Iterator[RunningGateway]:
    with run_gateway(env, tmp_path) as running:
        yield running


class Bucket:
    """The S3 bucket under the gateway, seen directly."""

    def __init__(self, env: dict[str, str]) -> None:
        self.name = env["STORAGE_S3_BUCKET"]
        self.s3 = s3_client(
            env["STORAGE_S3_ENDPOINT"], env["STORAGE_S3_ACCESS_KEY"], env["STORAGE_S3_SECRET_KEY"]
        )

    def multipart_keys(self) -> list[str]:
        uploads = self.s3.list_multipart_uploads(Bucket=self.name).get("Uploads", [])
        return sorted(u["Key"] for u in uploads)

    def record_keys(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.name, Prefix=PREFIX + RECORDS_PREFIX)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def record(self) -> dict[str, Any]:
        (key,) = self.record_keys()
        doc: dict[str, Any] = json.loads(
            self.s3.get_object(Bucket=self.name, Key=key)["Body"].read()
        )
        return doc


@pytest.fixture
def bucket(env: dict[str, str]) -> Bucket:
    return Bucket(env)


def test_persisted_size_counts_completed_parts_only(stub: Stub, bucket: Bucket) -> None:
    data = os.urandom(17 * MiB)
    upload_id = start(stub, "parts.bin")
    assert bucket.multipart_keys() == [PREFIX + "parts.bin"]
    assert bucket.record()["persisted_size"] == 0

    first = put(stub, segment(upload_id, data[: 12 * MiB], 0, finish=False))
    # 5 MiB parts: two complete parts are persisted, the 2 MiB after them are not.
    assert first.persisted_size == 10 * MiB
    assert query(stub, upload_id).persisted_size == 10 * MiB
    record = bucket.record()
    assert record["persisted_size"] == 10 * MiB
    assert record["key"] == "parts.bin"
    assert len(record["driver"]["parts"]) == 2
    assert record["complete"] is None
    assert bucket.multipart_keys() == [PREFIX + "parts.bin"]

    done = put(stub, segment(upload_id, data, 10 * MiB, finish=True))
    assert done.object.sha256 == hashlib.sha256(data).digest()
    assert get(stub, "parts.bin")[1] == data
    assert bucket.multipart_keys() == []
    record = bucket.record()
    assert record["complete"]["etag"] == done.object.etag
    assert record["persisted_size"] == len(data)


def test_abort_removes_the_multipart_upload_and_the_record(stub: Stub, bucket: Bucket) -> None:
    upload_id = start(stub, "aborted.bin")
    put(stub, segment(upload_id, os.urandom(6 * MiB), 0, finish=False))
    assert bucket.multipart_keys() == [PREFIX + "aborted.bin"]
    assert len(bucket.record_keys()) == 1
    aborted: pb.AbortUploadResponse = stub.AbortUpload(pb.AbortUploadRequest(upload_id=upload_id))
    assert aborted.existed
    assert bucket.multipart_keys() == []
    assert bucket.record_keys() == []


def test_cleanup_spares_young_uploads_and_removes_old_ones(
    gateway: RunningGateway, stub: Stub, bucket: Bucket
) -> None:
    data = os.urandom(7 * MiB)
    done_id = start(stub, "done.bin")
    put(stub, segment(done_id, b"finished", 0, finish=True))
    upload_id = start(stub, "pending.bin")
    put(stub, segment(upload_id, data[: 6 * MiB], 0, finish=False))
    backend = gateway.backend()

    # moto dates every multipart upload in 2010: a young resumable upload is
    # judged by its record, so an hour's age spares it.
    assert gateway.run(backend.abort_stale_uploads(3600)) == 0
    assert bucket.multipart_keys() == [PREFIX + "pending.bin"]
    assert len(bucket.record_keys()) == 2

    # A dry run counts what would go and aborts nothing.
    assert gateway.run(backend.abort_stale_uploads(0, dry_run=True)) == 1
    assert bucket.multipart_keys() == [PREFIX + "pending.bin"]
    assert len(bucket.record_keys()) == 2

    assert gateway.run(backend.abort_stale_uploads(0)) == 1
    assert bucket.multipart_keys() == []
    assert bucket.record_keys() == []  # the finished upload's record too
    assert get(stub, "done.bin")[1] == b"finished"
    status = query_error(stub, upload_id)
    assert status == (grpc.StatusCode.NOT_FOUND, "UPLOAD_NOT_FOUND")


def test_cli_cleanup_removes_resumable_uploads(
    env: dict[str, str], stub: Stub, bucket: Bucket
) -> None:
    upload_id = start(stub, "cli.bin")
    put(stub, segment(upload_id, os.urandom(6 * MiB), 0, finish=False))
    result = subprocess.run(
        [CLI_PATH, "cleanup", "--older-than", "0.001"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "default: aborted 1 incomplete upload(s)" in result.stdout
    assert bucket.multipart_keys() == []
    assert bucket.record_keys() == []


def query_error(stub: Stub, upload_id: str) -> tuple[grpc.StatusCode, str]:
    code, reason, _ = call_error(stub.QueryUpload, pb.QueryUploadRequest(upload_id=upload_id))
    return code, reason


def _list_all(stub: Stub, delimiter: str, page_size: int) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    prefixes: list[str] = []
    token = ""
    while True:
        page: pb.ListResponse = stub.List(
            pb.ListRequest(delimiter=delimiter, page_size=page_size, page_token=token)
        )
        keys += [o.key for o in page.objects]
        prefixes += list(page.common_prefixes)
        token = page.next_page_token
        if not token:
            return keys, prefixes


def test_listings_never_show_upload_records(stub: Stub, bucket: Bucket) -> None:
    for key in ("a", "dir/b"):
        put(stub, segment(start(stub, key), b"x", 0, finish=True))
    upload_id = start(stub, "in-progress.bin")
    put(stub, segment(upload_id, os.urandom(6 * MiB), 0, finish=False))
    assert len(bucket.record_keys()) == 3  # they are there, under the gateway's prefix

    for page_size in (1, 2, 1000):
        assert _list_all(stub, "", page_size) == (["a", "dir/b"], [])
        assert _list_all(stub, "/", page_size) == (["a"], ["dir/"])
    hidden: pb.ListResponse = stub.List(pb.ListRequest(prefix=".storagegw/"))
    assert list(hidden.objects) == []
    assert list(hidden.common_prefixes) == []
