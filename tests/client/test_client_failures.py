"""The clients and the CLI against a fake gateway that fails, or corrupts data, on
purpose (tests/client/failing_storage.py): missing objects, refused and broken
uploads, corrupted downloads and a SHA-256 that is not the data's."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from storagegw import AsyncClient, Client, cli, errors
from tests.client.failing_storage import FakeStorage


def failing_source() -> Iterator[bytes]:
    yield os.urandom(3 * 1024 * 1024)
    raise OSError("disk on fire")


def no_partial_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".part")]


def test_sync_missing_object(fake: tuple[FakeStorage, str]) -> None:
    with Client(fake[1], timeout=10) as client:
        with pytest.raises(errors.ObjectNotFound, match="not found") as caught:
            client.head("missing")
        assert isinstance(caught.value.grpc_error, grpc.RpcError)
        assert caught.value.code is grpc.StatusCode.NOT_FOUND
        assert not client.exists("missing")
        with pytest.raises(errors.ObjectNotFound):
            client.get_bytes("missing")


def test_sync_round_trip_passes_the_fakes_checks(fake: tuple[FakeStorage, str]) -> None:
    data = os.urandom(2_500_000)
    with Client(fake[1], chunk_size=64 * 1024) as client:
        assert client.put_bytes("k", data).size == len(data)
        assert client.get_bytes("k") == data


def test_sync_precondition_failure_mid_upload(fake: tuple[FakeStorage, str]) -> None:
    fake[0].objects["k"] = b"old"
    with Client(fake[1]) as client, pytest.raises(errors.PreconditionFailed):
        client.put_bytes("k", os.urandom(5 * 1024 * 1024), if_none_match="*")
    assert fake[0].objects["k"] == b"old"


def test_sync_source_error_is_raised_and_nothing_stored(fake: tuple[FakeStorage, str]) -> None:
    with Client(fake[1]) as client, pytest.raises(OSError, match="disk on fire"):
        client.put_file("k", failing_source())
    assert fake[0].put_ended.wait(10)
    assert "k" not in fake[0].objects


def test_sync_corrupted_download(fake: tuple[FakeStorage, str], tmp_path: Path) -> None:
    fake[0].objects["k"] = os.urandom(10_000)
    fake[0].corrupt_downloads = True
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"previous")
    with Client(fake[1]) as client:
        with pytest.raises(errors.ChecksumMismatch, match="offset 2000"):
            client.download_file("k", dest)
        with client.open("k") as reader:
            assert reader.read(100) == fake[0].objects["k"][:100]
            with pytest.raises(errors.ChecksumMismatch):
                reader.read()
    assert dest.read_bytes() == b"previous"
    assert no_partial_files(tmp_path)


def test_sync_download_with_a_wrong_object_sha256(
    fake: tuple[FakeStorage, str], tmp_path: Path
) -> None:
    """The client hashes what it downloads only with verify_sha256 (as for
    uploads): then a SHA-256 that is not the bytes' fails the download, in
    one stream even where the object would be read in parallel ranges."""
    data = fake[0].objects["k"] = os.urandom(3 * 1024 * 1024 + 5)
    fake[0].misreport_sha256 = True
    dest = tmp_path / "out.bin"
    with Client(fake[1]) as client:
        with pytest.raises(errors.ChecksumMismatch, match="sha256"):
            client.download_file("k", dest, verify_sha256=True, parallel_threshold=1024 * 1024)
        with pytest.raises(errors.ChecksumMismatch, match="sha256"):
            client.get_bytes("k", verify_sha256=True)
        with (
            client.open("k", verify_sha256=True) as reader,
            pytest.raises(errors.ChecksumMismatch, match="sha256"),
        ):
            reader.read()
        assert not dest.exists()
        assert no_partial_files(tmp_path)
        # By default the CRC32C alone is checked, and it holds.
        assert client.get_bytes("k") == data
        info = client.download_file("k", dest)
        assert dest.read_bytes() == data
        assert info.sha256 is not None
        assert info.sha256 != hashlib.sha256(data).digest()  # the fake's, taken as reported
    with Client(fake[1], verify_sha256=True) as client:
        with pytest.raises(errors.ChecksumMismatch, match="sha256"):
            client.get_bytes("k")
        assert client.get_bytes("k", verify_sha256=False) == data


async def test_async_download_with_a_wrong_object_sha256(
    fake: tuple[FakeStorage, str], tmp_path: Path
) -> None:
    data = fake[0].objects["k"] = os.urandom(3 * 1024 * 1024 + 5)
    fake[0].misreport_sha256 = True
    dest = tmp_path / "out.bin"
    async with AsyncClient(fake[1]) as client:
        with pytest.raises(errors.ChecksumMismatch, match="sha256"):
            await client.download_file(
                "k", dest, verify_sha256=True, parallel_threshold=1024 * 1024
            )
        with pytest.raises(errors.ChecksumMismatch, match="sha256"):
            await client.get_bytes("k", verify_sha256=True)
        async with client.open("k", verify_sha256=True) as reader:
            with pytest.raises(errors.ChecksumMismatch, match="sha256"):
                await reader.read()
        assert not dest.exists()
        assert no_partial_files(tmp_path)
        assert await client.get_bytes("k") == data
        await client.download_file("k", dest)
        assert dest.read_bytes() == data
    async with AsyncClient(fake[1], verify_sha256=True) as client:
        with pytest.raises(errors.ChecksumMismatch, match="sha256"):
            await client.download_file("k", tmp_path / "again.bin")


async def test_async_missing_object(fake: tuple[FakeStorage, str]) -> None:
    async with AsyncClient(fake[1], timeout=10) as client:
        with pytest.raises(errors.ObjectNotFound):
            await client.head("missing")
        assert not await client.exists("missing")
        with pytest.raises(errors.ObjectNotFound):
            await client.get_bytes("missing")


async def test_async_round_trip_and_failures(fake: tuple[FakeStorage, str], tmp_path: Path) -> None:
    data = os.urandom(2_500_000)

    async def blocks() -> AsyncIterator[bytes]:
        for offset in range(0, len(data), 300_000):
            yield data[offset : offset + 300_000]

    async with AsyncClient(fake[1]) as client:
        assert (await client.put_file("k", blocks())).size == len(data)
        assert await client.get_bytes("k") == data
        with pytest.raises(errors.PreconditionFailed):
            await client.put_bytes("k", data, if_none_match="*")
        fake[0].put_ended.clear()
        with pytest.raises(OSError, match="disk on fire"):
            await client.put_file("partial", failing_source())
        assert fake[0].put_ended.wait(10)
        assert "partial" not in fake[0].objects
        fake[0].corrupt_downloads = True
        with pytest.raises(errors.ChecksumMismatch):
            await client.download_file("k", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    assert no_partial_files(tmp_path)


def test_cli_get_verifies_the_sha256_when_asked(
    fake: tuple[FakeStorage, str], tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    data = fake[0].objects["k"] = os.urandom(5000)
    fake[0].misreport_sha256 = True
    for dest in (str(tmp_path / "out"), "-"):
        assert cli.main(["get", "k", dest, "--verify-sha256", "--target", fake[1]]) == 5
        err = capsysbinary.readouterr().err
        assert b"sha256" in err
        assert b"(CHECKSUM_MISMATCH)" in err
    assert not (tmp_path / "out").exists()
    assert cli.main(["get", "k", str(tmp_path / "out"), "--target", fake[1]]) == 0
    assert (tmp_path / "out").read_bytes() == data


def test_cli_reports_errors_with_reason_and_exit_code(
    fake: tuple[FakeStorage, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--target", fake[1], "stat", "missing"]) == 3
    assert capsys.readouterr().err == (
        "storagegw: error: object 'missing' not found (OBJECT_NOT_FOUND)\n"
    )
    fake[0].objects["k"] = os.urandom(5000)
    fake[0].corrupt_downloads = True
    assert cli.main(["get", "k", str(tmp_path / "out"), "--target", fake[1]]) == 5
    assert "(CHECKSUM_MISMATCH)" in capsys.readouterr().err
    assert cli.main(["--target", "127.0.0.1:1", "--timeout", "5", "stat", "k"]) == 7
