"""Scanned resumable uploads (put_file's, and raw StartUpload + Put streams)
and signed-URL PUT and POST served by the gateway, on a real clamd: EICAR in
a 64 MiB object is never visible under its key and lands in quarantine;
clean ones are promoted marked scan=clean; a clamd that dies fails closed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.http.server import REASON_HEADER
from storagegw import Client, MalwareDetected, RetryPolicy, ScannerUnavailable, UploadNotFound
from tests.clamd_server import EICAR_BODY_SIGNATURE, ClamdServer
from tests.conftest import RunningGateway
from tests.scanning.scan_gateways import (
    BIG,
    MIB,
    SCANNED_BUCKETS,
    assert_not_visible,
    assert_quarantined,
    pending_keys,
    scan_gateway,
    with_eicar,
)


@pytest.fixture(scope="module")
def running(
    clamd: ClamdServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    with scan_gateway(tmp_path_factory.mktemp("scan-uploads"), clamd.unix_address) as gateway:
        yield gateway


@pytest.fixture
def client(running: RunningGateway) -> Iterator[Client]:
    """Smaller chunks than conftest.py's client: more of them per upload."""
    with Client(running.target, timeout=120, chunk_size=2 * MIB) as client:
        yield client


def raw_upload(client: Client, bucket: str, key: str, data: bytes) -> None:
    """StartUpload, then two Put streams: the first stops half-way."""
    session = client.start_upload(key, bucket=bucket, size=len(data))
    half = len(data) // 2
    status = client.write_upload(session.upload_id, data[:half], offset=0)
    assert not status.complete
    persisted = status.persisted_size
    client.write_upload(session.upload_id, data[persisted:], offset=persisted, finish=True)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_eicar_in_a_resumable_upload_is_quarantined(
    running: RunningGateway, client: Client, tmp_path: Path, where: str
) -> None:
    data = with_eicar(BIG, where)
    bucket = SCANNED_BUCKETS[["start", "middle", "end"].index(where) % 2]
    source = tmp_path / "eicar.bin"
    source.write_bytes(data)
    key = f"resumable/{where}.bin"
    with pytest.raises(MalwareDetected) as caught:
        client.put_file(key, source, bucket=bucket, resumable=True)
    assert caught.value.signature == EICAR_BODY_SIGNATURE
    assert_not_visible(client, bucket, key)
    assert_quarantined(client, bucket, key, data)
    assert pending_keys(running, bucket) == []


@pytest.mark.parametrize("bucket", SCANNED_BUCKETS)
def test_eicar_in_raw_upload_streams_is_quarantined(
    running: RunningGateway, client: Client, bucket: str
) -> None:
    data = with_eicar(BIG, "end")
    with pytest.raises(MalwareDetected):
        raw_upload(client, bucket, "raw.bin", data)
    assert_not_visible(client, bucket, "raw.bin")
    assert_quarantined(client, bucket, "raw.bin", data)
    assert pending_keys(running, bucket) == []


@pytest.mark.parametrize("bucket", SCANNED_BUCKETS)
def test_a_clean_upload_is_promoted_marked_clean(
    running: RunningGateway, client: Client, bucket: str
) -> None:
    data = os.urandom(12 * MIB)
    raw_upload(client, bucket, "clean-upload.bin", data)
    info = client.head("clean-upload.bin", bucket=bucket)
    assert info.metadata["scan"] == "clean"
    assert info.metadata["scan-scanner"].startswith("ClamAV ")
    assert client.get_bytes("clean-upload.bin", bucket=bucket) == data
    assert pending_keys(running, bucket) == []


def test_an_upload_keeps_its_conditions_until_promotion(client: Client) -> None:
    client.put_bytes("taken.bin", b"first", bucket="files")
    session = client.start_upload("later.bin", bucket="files", if_none_match="*")
    client.put_bytes("later.bin", b"meanwhile", bucket="files")
    with pytest.raises(Exception, match=r"if_none_match") as caught:
        client.write_upload(session.upload_id, b"mine", offset=0, finish=True)
    assert caught.value.reason == "PRECONDITION_FAILED"  # type: ignore[attr-defined]
    assert client.get_bytes("later.bin", bucket="files") == b"meanwhile"


def test_a_refused_upload_stays_refused_when_retried(client: Client) -> None:
    session = client.start_upload("refused.bin", bucket="files")
    with pytest.raises(MalwareDetected):
        client.write_upload(session.upload_id, with_eicar(MIB, "start"), offset=0, finish=True)
    with pytest.raises(UploadNotFound):
        client.write_upload(session.upload_id, b"", offset=MIB, finish=True)
    assert_not_visible(client, "files", "refused.bin")


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_signed_uploads_are_scanned(
    running: RunningGateway, client: Client, method: str, where: str
) -> None:
    bucket = "mem" if method == "PUT" else "files"
    key = f"signed/{method}-{where}.bin"
    data = with_eicar(BIG, where)
    signed = client.sign_url(key, bucket=bucket, method=method)
    if method == "PUT":
        response = httpx.put(signed.url, content=data, headers=signed.headers, timeout=120)
    else:
        files = {"file": ("f", data)}
        response = httpx.post(signed.url, data=signed.form_fields, files=files, timeout=120)
    assert response.status_code == 422, response.text
    assert response.headers[REASON_HEADER] == "MALWARE_DETECTED"
    assert EICAR_BODY_SIGNATURE in response.text
    assert_not_visible(client, bucket, key)
    assert_quarantined(client, bucket, key, data)
    assert pending_keys(running, bucket) == []
    clean = os.urandom(MIB)
    signed = client.sign_url(f"{key}.clean", bucket=bucket, method="PUT")
    response = httpx.put(signed.url, content=clean, headers=signed.headers, timeout=120)
    assert response.status_code == 200, response.text
    assert client.head(f"{key}.clean", bucket=bucket).metadata["scan"] == "clean"


def test_clamd_killed_before_an_upload_commits_fails_closed(
    doomed_clamd: ClamdServer, tmp_path: Path
) -> None:
    with (
        scan_gateway(tmp_path, doomed_clamd.tcp_address) as running,
        Client(running.target, timeout=120, retry=RetryPolicy(max_attempts=1)) as client,
    ):
        session = client.start_upload("late.bin", bucket="files")
        status = client.write_upload(session.upload_id, os.urandom(8 * MIB), offset=0)
        doomed_clamd.kill()
        with pytest.raises(ScannerUnavailable):
            client.write_upload(session.upload_id, b"", offset=status.persisted_size, finish=True)
        assert_not_visible(client, "files", "late.bin")
        assert pending_keys(running, "files") == []
        # A retry is told the upload is over, not that it succeeded.
        with pytest.raises(UploadNotFound, match="scan"):
            client.write_upload(session.upload_id, b"", offset=status.persisted_size, finish=True)


def test_an_upload_the_scanner_cannot_scan_is_stored_marked_skipped_where_allowed(
    running: RunningGateway, client: Client
) -> None:
    data = os.urandom(3 * MIB)
    raw_upload(client, "lenient", "unscanned.bin", data)
    assert client.head("unscanned.bin", bucket="lenient").metadata["scan"] == "skipped"
    assert client.get_bytes("unscanned.bin", bucket="lenient") == data
    assert pending_keys(running, "lenient") == []
    session = client.start_upload("refused.bin", bucket="strict")
    once = RetryPolicy(max_attempts=1)
    with pytest.raises(ScannerUnavailable):
        client.write_upload(session.upload_id, data, offset=0, finish=True, retry=once)
    # A retry (put_file's would) is told the upload is over, not that it succeeded.
    with pytest.raises(UploadNotFound, match="scan"):
        client.query_upload(session.upload_id)
    assert_not_visible(client, "strict", "refused.bin")
    assert pending_keys(running, "strict") == []
