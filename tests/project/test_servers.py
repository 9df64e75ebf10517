"""The S3 servers tests start (tests/moto_server.py, tests/ceph_rgw.py) are real HTTP servers
and behave as the project relies on: moto for plain S3 behaviour, Ceph RGW where signatures
must really be verified."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.ceph_rgw import CephRgw
from tests.moto_server import MotoServer
from tests.servers import make_bucket, s3_client

pytestmark = pytest.mark.timeout(120)


def _get(url: str) -> tuple[int, bytes]:
    """Plain HTTP GET, no S3 client involved: status and body."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (127.0.0.1)
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _error_code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


# ---- moto --------------------------------------------------------------------------------


def test_moto_put_get_over_http(moto_server: MotoServer) -> None:
    assert moto_server.endpoint.startswith("http://127.0.0.1:")
    make_bucket(moto_server.endpoint, "any", "thing", "moto-bucket")
    client = moto_server.client()
    client.put_object(Bucket="moto-bucket", Key="a/b.txt", Body=b"hello moto")
    assert client.get_object(Bucket="moto-bucket", Key="a/b.txt")["Body"].read() == b"hello moto"


def test_moto_reset_clears_everything(moto_server: MotoServer) -> None:
    client = moto_server.client()
    client.create_bucket(Bucket="doomed")
    client.put_object(Bucket="doomed", Key="k", Body=b"x")
    moto_server.reset()
    assert client.list_buckets()["Buckets"] == []
    with pytest.raises(ClientError) as excinfo:
        client.get_object(Bucket="doomed", Key="k")
    assert _error_code(excinfo.value) == (404, "NoSuchBucket")


def test_moto_does_not_verify_signatures(moto_server: MotoServer) -> None:
    """Documents why signing tests must use Ceph: moto accepts a tampered presigned URL."""
    client = moto_server.client()
    client.create_bucket(Bucket="unsigned")
    client.put_object(Bucket="unsigned", Key="k", Body=b"x")
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "unsigned", "Key": "k"}, ExpiresIn=60
    )
    assert _get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")) == (200, b"x")
    moto_server.reset()


# ---- Ceph RADOS Gateway --------------------------------------------------------------------


@pytest.fixture
def ceph_bucket(ceph_rgw: CephRgw) -> Iterator[tuple[Any, str]]:
    name = make_bucket(ceph_rgw.endpoint, ceph_rgw.access_key, ceph_rgw.secret_key, "gw-test")
    yield ceph_rgw.client(), name
    ceph_rgw.reset()


def test_ceph_put_get(ceph_bucket: tuple[Any, str]) -> None:
    client, bucket = ceph_bucket
    body = b"hello ceph\n" * 100
    put = client.put_object(Bucket=bucket, Key="dir/hello.txt", Body=body)
    assert put["ETag"].strip('"') == hashlib.md5(body).hexdigest()  # noqa: S324 (S3 ETag)
    assert client.get_object(Bucket=bucket, Key="dir/hello.txt")["Body"].read() == body
    ranged = client.get_object(Bucket=bucket, Key="dir/hello.txt", Range="bytes=0-4")
    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert ranged["Body"].read() == b"hello"


def test_ceph_multipart(ceph_bucket: tuple[Any, str]) -> None:
    client, bucket = ceph_bucket
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(5 * 1024 * 1024)]
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="big.bin")["UploadId"]
    etags = [
        client.upload_part(
            Bucket=bucket, Key="big.bin", UploadId=upload_id, PartNumber=number, Body=data
        )["ETag"]
        for number, data in enumerate(parts, 1)
    ]
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="big.bin",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]
        },
    )
    head = client.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == 10 * 1024 * 1024
    assert head["ETag"].strip('"').endswith("-2")
    got = client.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(b"".join(parts)).digest()


def test_ceph_presigned_get_and_tampering(ceph_bucket: tuple[Any, str]) -> None:
    client, bucket = ceph_bucket
    client.put_object(Bucket=bucket, Key="signed.txt", Body=b"signed content")
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "signed.txt"}, ExpiresIn=300
    )
    assert url.startswith("http://127.0.0.1:")
    assert _get(url) == (200, b"signed content")

    status, body = _get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
    assert status == 403, body
    assert b"SignatureDoesNotMatch" in body
    # another key than the one signed: the signature no longer covers the request
    status, _ = _get(url.replace("/signed.txt?", "/other.txt?"))
    assert status == 403


def test_ceph_wrong_secret_key_is_rejected(ceph_rgw: CephRgw, ceph_bucket: Any) -> None:
    _, bucket = ceph_bucket
    intruder = s3_client(ceph_rgw.endpoint, ceph_rgw.access_key, "not-the-secret-key")
    with pytest.raises(ClientError) as excinfo:
        intruder.list_objects_v2(Bucket=bucket)
    assert _error_code(excinfo.value) == (403, "SignatureDoesNotMatch")


def test_ceph_reset_deletes_buckets_objects_and_uploads(ceph_rgw: CephRgw) -> None:
    client = ceph_rgw.client()
    for name in ("reset-a", "reset-b"):
        client.create_bucket(Bucket=name)
        client.put_object(Bucket=name, Key="k1", Body=b"1")
        client.put_object(Bucket=name, Key="dir/k2", Body=b"2")
    client.create_multipart_upload(Bucket="reset-a", Key="pending")
    ceph_rgw.reset()
    assert client.list_buckets()["Buckets"] == []
