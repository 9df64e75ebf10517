"""A scanning bucket on S3 (moto): no move there, so a clean object is
promoted by S3's own copy and a delete, and an infected one quarantined
across buckets; a resumable upload (multipart) likewise once read back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storagegw import Client, MalwareDetected
from tests.clamd_server import EICAR_BODY_SIGNATURE, ClamdServer
from tests.conftest import RunningGateway, run_gateway
from tests.moto_server import MotoServer
from tests.scanning.scan_gateways import (
    MIB,
    QUARANTINE,
    assert_not_visible,
    pending_keys,
    with_eicar,
)
from tests.servers import make_bucket

S3_BUCKET = "sgw-scanned"


@pytest.fixture(scope="module")
def running(
    clamd: ClamdServer, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    moto_server.reset()
    make_bucket(moto_server.endpoint, moto_server.access_key, moto_server.secret_key, S3_BUCKET)
    directory: Path = tmp_path_factory.mktemp("scan-s3")
    config = directory / "buckets.toml"
    config.write_text(
        "default_bucket = 'remote'\n"
        "[buckets.remote]\nbackend = 's3'\n"
        f"bucket = '{S3_BUCKET}'\nendpoint = '{moto_server.endpoint}'\n"
        f"access_key = '{moto_server.access_key}'\nsecret_key = '{moto_server.secret_key}'\n"
        "region = 'us-east-1'\naddressing_style = 'path'\npart_size = '5MiB'\n"
        f"[buckets.remote.scan]\nclamd = '{clamd.tcp_address}'\n"
        f"quarantine_bucket = '{QUARANTINE}'\n"
        f"[buckets.{QUARANTINE}]\nbackend = 'local'\n"
    )
    env = {"GATEWAY_CONFIG": str(config), "STORAGE_URL_SECRET": "scan-s3-tests-secret"}
    with run_gateway(env, directory) as gateway:
        yield gateway


def test_the_driver_has_no_move(running: RunningGateway) -> None:
    assert running.backend("remote").capabilities.mover is None


def test_a_clean_put_is_promoted_by_copy_and_delete(
    running: RunningGateway, client: Client
) -> None:
    data = os.urandom(3 * MIB)
    client.put_bytes("clean.bin", data, bucket="remote", metadata={"a": "b"})
    info = client.head("clean.bin", bucket="remote")
    assert (info.metadata["scan"], info.metadata["a"]) == ("clean", "b")
    assert client.get_bytes("clean.bin", bucket="remote") == data
    assert pending_keys(running, "remote") == []


@pytest.mark.parametrize("resumable", [False, True])
def test_eicar_on_s3_is_quarantined(
    running: RunningGateway, client: Client, tmp_path: Path, resumable: bool
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(with_eicar(16 * MIB, "middle"))
    key = f"infected-{resumable}.bin"
    with pytest.raises(MalwareDetected) as caught:
        client.put_file(key, source, bucket="remote", resumable=resumable)
    assert caught.value.signature == EICAR_BODY_SIGNATURE
    assert_not_visible(client, "remote", key)
    assert client.head(f"remote/{key}", bucket=QUARANTINE).metadata["scan"] == "infected"
    assert pending_keys(running, "remote") == []


def test_a_clean_resumable_upload_is_promoted(running: RunningGateway, client: Client) -> None:
    data = os.urandom(12 * MIB)
    session = client.start_upload("multi.bin", bucket="remote", size=len(data))
    client.write_upload(session.upload_id, data, offset=0, finish=True)
    assert client.head("multi.bin", bucket="remote").metadata["scan"] == "clean"
    assert client.get_bytes("multi.bin", bucket="remote") == data
    assert pending_keys(running, "remote") == []
