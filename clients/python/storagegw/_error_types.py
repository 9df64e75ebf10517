"""The exception classes of storagegw.errors, which picks one for each
failed call (by its ErrorInfo reason, else its gRPC status code) and is where
users import them from."""

from __future__ import annotations

from collections.abc import Mapping

import grpc


class StorageError(Exception):
    """An error from the gateway, or found by the client while checking data.

    Attributes:
        code: the gRPC status code.
        reason: the ErrorInfo reason (for example OBJECT_NOT_FOUND), if any.
        message: the human-readable message.
        domain: the ErrorInfo domain ("storagegw" for gateway errors).
        metadata: the ErrorInfo context, for example the key.
        grpc_error: the original grpc.RpcError; None for client-side errors.
    """

    default_code = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str | None = None,
        domain: str | None = None,
        metadata: Mapping[str, str] | None = None,
        grpc_error: grpc.RpcError | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code: grpc.StatusCode = code if code is not None else self.default_code
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.grpc_error = grpc_error

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        label = self.reason or self.code.name
        return f"{type(self).__name__}({label}: {self.message!r})"


class NotFound(StorageError):
    default_code = grpc.StatusCode.NOT_FOUND


class ObjectNotFound(NotFound):
    pass


class BucketNotFound(NotFound):
    pass


class InvalidArgument(StorageError):
    default_code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidKey(InvalidArgument):
    pass


class TooManyKeys(InvalidArgument):
    """A call named more keys than it takes (DeleteObjects: 1,000); nothing
    was done (delete_many splits its keys into calls that fit)."""


class InvalidRange(InvalidArgument):
    """A read range outside the object (INVALID_RANGE or OUT_OF_RANGE)."""

    default_code = grpc.StatusCode.OUT_OF_RANGE


class PreconditionFailed(StorageError):
    default_code = grpc.StatusCode.FAILED_PRECONDITION


class NotModified(PreconditionFailed):
    """A read with if_none_match found the object unchanged."""


class KeyConflict(PreconditionFailed):
    """The key clashes with an existing one (for example a file/directory clash)."""


class RouteNotAvailable(PreconditionFailed):
    """SignUrl asked for a route the bucket does not have (a CDN URL of a
    bucket without a CDN, a storage URL of a storage that signs none)."""


class DataLoss(StorageError):
    default_code = grpc.StatusCode.DATA_LOSS


class ChecksumMismatch(DataLoss):
    pass


class SizeMismatch(DataLoss):
    pass


class ResourceExhausted(StorageError):
    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class ObjectTooLarge(ResourceExhausted):
    pass


class ObjectTooSmall(InvalidArgument):
    """The object is below a signed POST's min_size or its bucket's upload
    policy minimum (OUT_OF_RANGE)."""

    default_code = grpc.StatusCode.OUT_OF_RANGE


class UploadRefused(InvalidArgument):
    """The bucket's upload policy refused the object: its sniffed type, its
    key's suffix, or missing metadata. Nothing was stored."""


class TypeNotAllowed(UploadRefused):
    """The type sniffed from the object's first bytes is not allowed."""

    @property
    def sniffed_type(self) -> str | None:
        return self.metadata.get("sniffed")

    @property
    def declared_type(self) -> str | None:
        return self.metadata.get("declared")


class TypeMismatch(TypeNotAllowed):
    """The declared content type disagrees with the sniffed one."""


class MalwareDetected(InvalidArgument):
    """The scanner found malware; nothing is visible under the key."""

    @property
    def signature(self) -> str | None:
        return self.metadata.get("signature")


class QuotaExceeded(ResourceExhausted):
    pass


class TooManyStreams(ResourceExhausted):
    """The gateway is at its cap of concurrent streams; retry after a pause
    (ErrorInfo metadata retry_after_s says how long)."""


class Unavailable(StorageError):
    default_code = grpc.StatusCode.UNAVAILABLE


class ScannerUnavailable(Unavailable):
    """The bucket's malware scanner could not scan; nothing was stored."""


class PermissionDenied(StorageError):
    default_code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(StorageError):
    default_code = grpc.StatusCode.UNAUTHENTICATED


class CredentialsMissing(Unauthenticated):
    """The gateway wants credentials (a token, an API key or a client
    certificate) and the call brought none."""


class CredentialsInvalid(Unauthenticated):
    """The API key or token is not one the gateway knows."""


class TokenExpired(Unauthenticated):
    """The bearer token is past its expiry; fetch a fresh one and retry."""


class TokenInvalid(Unauthenticated):
    """The bearer token failed verification (metadata "detail" says which check)."""


class AccessDenied(PermissionDenied):
    """The gateway's policy does not let this caller do this here."""


class DeadlineExceeded(StorageError):
    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unimplemented(StorageError):
    default_code = grpc.StatusCode.UNIMPLEMENTED


class Cancelled(StorageError):
    default_code = grpc.StatusCode.CANCELLED


class Internal(StorageError):
    default_code = grpc.StatusCode.INTERNAL


class StreamIdleTimeout(DeadlineExceeded):
    """The gateway ended a stream that sent nothing for its idle timeout."""


class Aborted(StorageError):
    """A conflict with a concurrent operation; retrying later may succeed."""

    default_code = grpc.StatusCode.ABORTED


# ---------------------------------------------------------------- resumable uploads


class UploadNotFound(NotFound):
    """The upload_id names no upload (aborted, cleaned up, or on another backend)."""


class UploadExpired(UploadNotFound):
    """The upload_id is past its expiry; start a new upload."""


class InvalidUploadId(InvalidArgument):
    """The upload_id is malformed or forged (not issued by this gateway's secret)."""


class InvalidWriteOffset(InvalidArgument):
    """A continuation started past the persisted size (OUT_OF_RANGE).

    persisted_size is where to continue from, when the gateway said.
    """

    default_code = grpc.StatusCode.OUT_OF_RANGE

    @property
    def persisted_size(self) -> int | None:
        value = self.metadata.get("persisted_size")
        return int(value) if value is not None and value.isdigit() else None


class UploadBusy(Aborted):
    """Another Put stream is writing the same upload (it may be a broken one
    the gateway has not yet noticed); retry after a pause."""
