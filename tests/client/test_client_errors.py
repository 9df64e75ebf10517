"""Client error handling: decoding rich statuses, and failures end to end.

The first part decodes statuses crafted with the googleapis protos (as the
gateway builds them); the second runs the clients against a small in-process
fake servicer that fails, or corrupts data, on purpose.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import google_crc32c
import grpc
import grpc.aio
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from storagegw import AsyncClient, Client, cli, errors
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc


def status_trailer(
    code: grpc.StatusCode,
    reason: str,
    message: str = "boom",
    metadata: dict[str, str] | None = None,
    *,
    extra_detail_first: bool = False,
) -> tuple[tuple[str, bytes], ...]:
    status = status_pb2.Status(code=code.value[0], message=message)
    if extra_detail_first:
        status.details.add().Pack(error_details_pb2.RetryInfo())
    info = error_details_pb2.ErrorInfo(reason=reason, domain="storagegw", metadata=metadata or {})
    status.details.add().Pack(info)
    return (("grpc-status-details-bin", status.SerializeToString()),)


class FakeRpcError(grpc.RpcError):
    """What a failed sync call raises, as far as from_rpc_error looks."""

    def __init__(
        self, code: grpc.StatusCode, details: str | None, trailers: tuple[tuple[str, bytes], ...]
    ) -> None:
        super().__init__(details)
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:  # type: ignore[override]
        return self._trailers


# ---------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    ("reason", "code", "expected"),
    [
        ("OBJECT_NOT_FOUND", grpc.StatusCode.NOT_FOUND, errors.ObjectNotFound),
        ("BUCKET_NOT_FOUND", grpc.StatusCode.NOT_FOUND, errors.BucketNotFound),
        ("INVALID_KEY", grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidKey),
        ("INVALID_STREAM", grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument),
        ("PRECONDITION_FAILED", grpc.StatusCode.FAILED_PRECONDITION, errors.PreconditionFailed),
        ("NOT_MODIFIED", grpc.StatusCode.FAILED_PRECONDITION, errors.NotModified),
        ("KEY_CONFLICT", grpc.StatusCode.FAILED_PRECONDITION, errors.KeyConflict),
        ("CHECKSUM_MISMATCH", grpc.StatusCode.DATA_LOSS, errors.ChecksumMismatch),
        ("SIZE_MISMATCH", grpc.StatusCode.DATA_LOSS, errors.SizeMismatch),
        ("OBJECT_TOO_LARGE", grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ObjectTooLarge),
        ("QUOTA_EXCEEDED", grpc.StatusCode.RESOURCE_EXHAUSTED, errors.QuotaExceeded),
        ("INVALID_RANGE", grpc.StatusCode.OUT_OF_RANGE, errors.InvalidRange),
        ("NOT_IMPLEMENTED", grpc.StatusCode.UNIMPLEMENTED, errors.Unimplemented),
        ("BACKEND_UNAVAILABLE", grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
        ("PERMISSION_DENIED", grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
        ("SOMETHING_NEW", grpc.StatusCode.NOT_FOUND, errors.NotFound),
        ("UPLOAD_NOT_FOUND", grpc.StatusCode.NOT_FOUND, errors.UploadNotFound),
        ("UPLOAD_EXPIRED", grpc.StatusCode.NOT_FOUND, errors.UploadExpired),
        ("INVALID_UPLOAD_ID", grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidUploadId),
        ("INVALID_WRITE_OFFSET", grpc.StatusCode.OUT_OF_RANGE, errors.InvalidWriteOffset),
        ("UPLOAD_BUSY", grpc.StatusCode.ABORTED, errors.UploadBusy),
        ("SOMETHING_NEW", grpc.StatusCode.ABORTED, errors.Aborted),
        ("SOMETHING_NEW", grpc.StatusCode.DATA_LOSS, errors.DataLoss),
    ],
)
def test_reason_picks_the_class_then_code(
    reason: str, code: grpc.StatusCode, expected: type[errors.StorageError]
) -> None:
    err = FakeRpcError(code, "the message", status_trailer(code, reason, metadata={"key": "k"}))
    converted = errors.from_rpc_error(err)
    assert type(converted) is expected
    assert converted.code is code
    assert converted.reason == reason
    assert converted.domain == "storagegw"
    assert converted.metadata == {"key": "k"}
    assert converted.message == str(converted) == "the message"
    assert converted.grpc_error is err


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded),
        (grpc.StatusCode.UNAUTHENTICATED, errors.Unauthenticated),
        (grpc.StatusCode.CANCELLED, errors.Cancelled),
        (grpc.StatusCode.OUT_OF_RANGE, errors.InvalidRange),
        (grpc.StatusCode.INTERNAL, errors.Internal),
        (grpc.StatusCode.UNKNOWN, errors.StorageError),
    ],
)
def test_code_alone_picks_the_class(
    code: grpc.StatusCode, expected: type[errors.StorageError]
) -> None:
    converted = errors.from_rpc_error(FakeRpcError(code, "no details", ()))
    assert type(converted) is expected
    assert converted.reason is None
    assert converted.metadata == {}


def test_error_info_found_among_other_details() -> None:
    trailers = status_trailer(
        grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND", extra_detail_first=True
    )
    converted = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.NOT_FOUND, "x", trailers))
    assert isinstance(converted, errors.ObjectNotFound)


def test_status_message_used_when_details_are_empty() -> None:
    trailers = status_trailer(grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND", "from status")
    converted = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.NOT_FOUND, None, trailers))
    assert converted.message == "from status"


def test_undecodable_details_fall_back_to_the_code() -> None:
    trailers = (("grpc-status-details-bin", b"\xff\xff\xff"),)
    converted = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.DATA_LOSS, "bad", trailers))
    assert type(converted) is errors.DataLoss
    assert converted.reason is None


def test_bare_rpc_error() -> None:
    converted = errors.from_rpc_error(grpc.RpcError("odd"))
    assert type(converted) is errors.StorageError
    assert converted.code is grpc.StatusCode.UNKNOWN


def test_aio_rpc_error() -> None:
    trailers = status_trailer(grpc.StatusCode.FAILED_PRECONDITION, "NOT_MODIFIED")
    err = grpc.aio.AioRpcError(
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*trailers),
        "unchanged",
        None,
    )
    converted = errors.from_rpc_error(err)
    assert isinstance(converted, errors.NotModified)
    assert isinstance(converted, errors.PreconditionFailed)
    assert converted.message == "unchanged"


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [
        (errors.BucketNotFound("x"), 3),
        (errors.NotModified("x"), 4),
        (errors.KeyConflict("x"), 4),
        (errors.SizeMismatch("x"), 5),
        (errors.InvalidKey("x"), 6),
        (errors.InvalidRange("x"), 6),
        (errors.DeadlineExceeded("x"), 7),
        (errors.Unauthenticated("x"), 8),
        (errors.QuotaExceeded("x"), 1),
    ],
)
def test_cli_exit_codes(error: errors.StorageError, exit_code: int) -> None:
    assert cli.exit_code_for(error) == exit_code


# ---------------------------------------------------------------- end to end


def crc(data: bytes) -> int:
    return int(google_crc32c.value(data))


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, reason: str, message: str) -> None:
    info = error_details_pb2.ErrorInfo(reason=reason, domain="storagegw")
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    context.abort_with_status(rpc_status.to_status(status))


class FakeStorage(storage_pb2_grpc.StorageServiceServicer):
    """Just enough of the gateway to fail on purpose; checks each Put chunk."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.corrupt_downloads = False
        # Report a SHA-256 the data does not have: every chunk is intact,
        # only the whole-object check can tell.
        self.misreport_sha256 = False
        self.put_ended = threading.Event()

    def Put(
        self, request_iterator: Iterator[pb.PutRequest], context: grpc.ServicerContext
    ) -> pb.PutResponse:
        first = next(request_iterator)
        spec = first.spec
        if spec.preconditions.if_none_match == "*" and spec.key in self.objects:
            abort(context, grpc.StatusCode.FAILED_PRECONDITION, "PRECONDITION_FAILED", "exists")
        data, finished = bytearray(), False
        try:
            # The first message may carry data too (a small object goes in one).
            for message in itertools.chain([first], request_iterator):
                if crc(message.chunk.content) != message.chunk.crc32c:
                    abort(context, grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH", "bad chunk")
                data += message.chunk.content
                finished = message.finish_write
                if finished and message.object_checksums.crc32c != crc(bytes(data)):
                    abort(context, grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH", "bad object")
        finally:
            self.put_ended.set()
        if not finished:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STREAM", "no finish_write")
        self.objects[spec.key] = bytes(data)
        return pb.PutResponse(object=self._info(spec.key), persisted_size=len(data))

    def Get(
        self, request: pb.GetRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.GetResponse]:
        data = self._data(request.key, context)
        size = len(data)
        yield pb.GetResponse(
            object=self._info(request.key),
            content_range=pb.ContentRange(start=0, end=size, complete_length=size),
        )
        for offset in range(0, size, 1000):
            piece = data[offset : offset + 1000]
            checksum = crc(piece)
            if self.corrupt_downloads and offset >= 2000:
                piece = bytes([piece[0] ^ 0xFF]) + piece[1:]  # never equal to what was sent
            yield pb.GetResponse(chunk=pb.ChecksummedData(content=piece, crc32c=checksum))

    def Head(self, request: pb.HeadRequest, context: grpc.ServicerContext) -> pb.HeadResponse:
        self._data(request.key, context)
        return pb.HeadResponse(object=self._info(request.key))

    def _data(self, key: str, context: grpc.ServicerContext) -> bytes:
        if key not in self.objects:
            abort(
                context, grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND", f"object {key!r} not found"
            )
        return self.objects[key]

    def _info(self, key: str) -> pb.ObjectInfo:
        data = self.objects[key]
        sha256 = hashlib.sha256(data + b"!" if self.misreport_sha256 else data).digest()
        return pb.ObjectInfo(
            bucket="default", key=key, size=len(data), crc32c=crc(data), sha256=sha256
        )


@pytest.fixture
def fake() -> Iterator[tuple[FakeStorage, str]]:
    servicer = FakeStorage()
    server = grpc.server(ThreadPoolExecutor(max_workers=8))
    storage_pb2_grpc.add_StorageServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(None)


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
