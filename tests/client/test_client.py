"""The bundled Python clients (sync and async) against a real gateway."""

from __future__ import annotations

import hashlib
import io
import os
import threading

import grpc
import httpx
import pytest

from storagegw import (
    AsyncClient,
    Client,
    InvalidArgument,
    InvalidKey,
    NotFound,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)

MIB = 1024 * 1024


@pytest.fixture
def client(gateway):
    with Client(gateway.target, timeout=30) as storage:
        yield storage


def test_put_and_get_bytes(client):
    info = client.put_bytes("a/b.txt", b"hello", content_type="text/plain", metadata={"x": "1"})
    assert (info.key, info.size, info.content_type) == ("a/b.txt", 5, "text/plain")
    assert info.sha256 == hashlib.sha256(b"hello").digest()
    assert client.get_bytes("a/b.txt") == b"hello"
    assert client.get_bytes("a/b.txt", offset=1, length=3) == b"ell"
    assert client.get_bytes("a/b.txt", offset=-2) == b"lo"
    assert client.head("a/b.txt").metadata == {"x": "1"}


def test_put_file_from_path_guesses_type_and_reports_progress(client, tmp_path):
    data = os.urandom(3 * MIB + 11)
    source = tmp_path / "clip.json"
    source.write_bytes(data)
    seen = []
    info = client.put_file("clips/clip.json", source, progress=seen.append)
    assert info.content_type == "application/json"
    assert info.size == len(data)
    assert seen == sorted(seen)
    assert seen[-1] == len(data)
    assert client.get_bytes("clips/clip.json") == data


def test_put_file_from_file_object_and_iterable(client):
    data = os.urandom(2 * MIB + 1)
    assert client.put_file("f", io.BytesIO(data)).sha256 == hashlib.sha256(data).digest()
    pieces = [b"x" * 1000, b"", b"y" * (MIB + 7), b"z"]
    info = client.put_file("g", iter(pieces))
    assert info.size == sum(map(len, pieces))
    assert client.get_bytes("g") == b"".join(pieces)


def test_download_file_is_verified_and_atomic(client, tmp_path):
    data = os.urandom(4 * MIB + 3)
    client.put_bytes("big.bin", data)
    dest = tmp_path / "out" / "big.bin"
    dest.parent.mkdir()
    progress = []
    info = client.download_file("big.bin", dest, progress=progress.append)
    assert dest.read_bytes() == data
    assert info.sha256 == hashlib.sha256(data).digest()
    assert progress[-1] == len(data)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["big.bin"]


def test_failed_download_leaves_nothing(client, tmp_path):
    target_dir = tmp_path / "downloads"
    target_dir.mkdir()
    with pytest.raises(ObjectNotFound):
        client.download_file("missing", target_dir / "never.bin")
    assert list(target_dir.iterdir()) == []


def test_streaming_reader(client):
    data = os.urandom(3 * MIB)
    client.put_bytes("s", data)
    with client.open("s") as reader:
        assert reader.info.size == len(data)
        head = reader.read(10)
        rest = b"".join(reader)
    assert head + rest == data


def test_exists_delete_and_typed_errors(client):
    assert client.exists("k") is False
    client.put_bytes("k", b"1")
    assert client.exists("k") is True
    with pytest.raises(PreconditionFailed) as failed:
        client.put_bytes("k", b"2", if_none_match="*")
    assert failed.value.reason == "PRECONDITION_FAILED"
    assert failed.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert isinstance(failed.value.grpc_error, grpc.RpcError)
    assert client.delete("k") is True
    assert client.delete("k") is False
    with pytest.raises(NotFound) as missing:
        client.head("k")
    assert missing.value.reason == "OBJECT_NOT_FOUND"
    with pytest.raises(InvalidKey):
        client.put_bytes("../escape", b"x")


def test_list_follows_pages(client):
    keys = [f"p/{i:03d}" for i in range(35)]
    for key in keys:
        client.put_bytes(key, key.encode())
    client.put_bytes("q", b"other")
    assert [o.key for o in client.list("p/", page_size=10)] == keys
    pages = list(client.list_pages("", delimiter="/", page_size=10))
    assert [list(p.prefixes) for p in pages] == [["p/"]]
    assert [o.key for p in pages for o in p.objects] == ["q"]


def test_sign_url_get_and_put(gateway, client):
    client.put_bytes("doc.txt", b"signed content")
    url = client.sign_url("doc.txt", expires_in=60, download=True, filename="report.txt")
    response = httpx.get(url.url)
    assert response.status_code == 200
    assert response.content == b"signed content"
    if gateway.backend_name.startswith(("s3", "gcs")):
        # A presigned S3 or GCS PUT cannot bound the size (that takes a POST policy).
        with pytest.raises(InvalidArgument):
            client.sign_url("up.bin", method="PUT", max_size=100)
        limit = None
    else:
        limit = 100
    upload = client.sign_url(
        "up.bin", method="PUT", content_type="application/x-test", max_size=limit
    )
    response = httpx.put(upload.url, content=b"via http", headers=upload.headers)
    assert response.status_code == 200, response.text
    assert client.get_bytes("up.bin") == b"via http"
    assert client.head("up.bin").content_type == "application/x-test"


@pytest.mark.emulator_gap(
    "gcs",
    reason="fake-gcs-server ignores response-content-disposition on signed GETs; "
    "tests/backends/gcs/test_signing.py shows the signed URL asks for it",
)
def test_signed_download_sets_content_disposition(gateway, client):
    client.put_bytes("doc.txt", b"signed content")
    url = client.sign_url("doc.txt", expires_in=60, download=True, filename="report.txt")
    response = httpx.get(url.url)
    assert response.status_code == 200
    assert "attachment" in response.headers.get("content-disposition", "")


def test_copy(client):
    client.put_bytes("src", b"data", metadata={"a": "1"})
    copied = client.copy("src", "dst")
    assert copied.metadata == {"a": "1"}
    assert client.get_bytes("dst") == b"data"


def test_unreachable_gateway_is_unavailable():
    with Client("127.0.0.1:1", timeout=5) as storage, pytest.raises(StorageError) as error:
        storage.head("k")
    assert error.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_async_client_round_trip(gateway, tmp_path):
    data = os.urandom(2 * MIB + 5)
    async with AsyncClient(gateway.target, timeout=30) as storage:
        info = await storage.put_bytes("async/x", data)
        assert info.size == len(data)
        assert await storage.get_bytes("async/x") == data

        async def chunks():
            yield b"abc"
            yield b"def"

        assert (await storage.put_file("async/y", chunks())).size == 6
        dest = tmp_path / "y"
        await storage.download_file("async/y", dest)
        assert dest.read_bytes() == b"abcdef"
        assert [o.key async for o in storage.list("async/")] == ["async/x", "async/y"]
        async with storage.open("async/x", offset=-5) as reader:
            assert await reader.read() == data[-5:]
        with pytest.raises(NotFound):
            await storage.head("async/missing")
        assert await storage.delete("async/x") is True
        signed = await storage.sign_url("async/y")
        async with httpx.AsyncClient() as http:
            assert (await http.get(signed.url)).content == b"abcdef"


async def test_async_reader_hands_each_checked_chunk_to_a_write_off_the_loop(gateway):
    # What AsyncClient.download_file writes with: the file write, a blocking
    # call, runs in a worker thread, never on the event loop.
    data = os.urandom(3 * MIB + 5)
    written = bytearray()
    threads = set()

    def write(chunk):
        threads.add(threading.get_ident())
        written.extend(chunk)
        return len(written)

    async with AsyncClient(gateway.target, timeout=30) as storage:
        await storage.put_bytes("async/big", data)
        async with storage.open("async/big") as reader:
            while (received := await reader.read_into(write)) is not None:
                size, total = received
                assert total == len(written)
                assert 0 < size <= total
    assert bytes(written) == data
    assert threads
    assert threading.get_ident() not in threads
