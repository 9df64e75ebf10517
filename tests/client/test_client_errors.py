"""Client error handling: the rich statuses the gateway sends (crafted here with
the googleapis protos, as the gateway builds them) decoded into the client's
errors, and the CLI's exit code for each."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2, status_pb2

from storagegw import cli, errors


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
