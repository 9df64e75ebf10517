"""What the S3 driver's modules share: the error mapping, ObjectMeta from S3
responses, and S3Context (the client, bucket and prefix a reader, writer or
the backend itself works against).

aioboto3/aiobotocore are untyped: the client is typing.Any here and every
response is a plain dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from gateway.backends.shared.object_status import object_status_error
from gateway.backends.shared.reserved_metadata import META_CRC32C, META_SHA256, user_metadata
from gateway.domain.errors import (
    GatewayError,
    Reason,
    backend_unavailable,
    credentials_refused,
    no_credentials,
)
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, ObjectMeta

log = logging.getLogger(__name__)

KIND = "s3"
MAX_PARTS = 10_000

# The write's own generation (microseconds since the epoch when the write
# began): unlike Last-Modified (1 s), it changes on every write.
META_GENERATION = "sgw-generation"
# Object tag naming the ETag the checksum tags were written for (multipart
# objects only: see s3/writer.py).
TAG_ETAG = "sgw-etag"

_HEX8 = re.compile(r"[0-9a-f]{8}")
_HEX64 = re.compile(r"[0-9a-f]{64}")

_DENIED = {
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AccountProblem",
    "InvalidSecurity",
}
_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_INVALID_REQUEST = {
    "InvalidArgument",
    "InvalidStorageClass",
    "InvalidRequest",
    "InvalidEncryptionAlgorithmError",
    "KMS.NotFoundException",
    "KMS.DisabledException",
}
_PRECONDITION = {"PreconditionFailed", "ConditionalRequestConflict", "412"}
_UNAVAILABLE = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "InternalError",
    "OperationAborted",
    "TooManyRequests",
}
NETWORK_ERRORS = (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError, OSError)
S3_ERRORS = (ClientError, *NETWORK_ERRORS)


def error_code(error: ClientError) -> tuple[str, int]:
    """(S3 error code, HTTP status) of a ClientError."""
    response: Mapping[str, Any] = error.response
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def error_code_of(error: BaseException) -> str:
    return error_code(error)[0] if isinstance(error, ClientError) else ""


def is_not_found(error: BaseException) -> bool:
    if not isinstance(error, ClientError):
        return False
    code, status = error_code(error)
    return code in _NOT_FOUND or (status == 404 and code != "NoSuchBucket")


def is_invalid_range(error: BaseException) -> bool:
    if not isinstance(error, ClientError):
        return False
    code, status = error_code(error)
    return code == "InvalidRange" or status == 416


def size_in_invalid_range(error: BaseException) -> int | None:
    """The object's size a 416 answer names, where the store names it (AWS:
    ActualObjectSize; else a Content-Range of bytes */size); None otherwise."""
    if not isinstance(error, ClientError):
        return None
    actual = str(error.response.get("Error", {}).get("ActualObjectSize") or "")
    if actual.isdigit():
        return int(actual)
    headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    content_range = str(headers.get("content-range") or "")
    if content_range.startswith("bytes */") and content_range[8:].isdigit():
        return int(content_range[8:])
    return None


def bucket_not_found(bucket: str) -> GatewayError:
    return GatewayError(
        Reason.BUCKET_NOT_FOUND, f"S3 bucket {bucket!r} does not exist", s3_bucket=bucket
    )


def _status_meant(code: str, status: int) -> int:
    """The HTTP status an S3 error code stands for: the code decides, since
    S3-compatible stores differ in the status they send with it (a conditional
    conflict comes as 409 or 412)."""
    if code in _PRECONDITION or (status == 409 and "Condition" in code):
        return 412
    if code == "304":
        return 304
    if code == "InvalidRange":
        return 416
    if code in _NOT_FOUND:
        return 404
    return status


def map_error(
    error: BaseException, *, bucket: str, key: str = "", condition: str = "", op: str = ""
) -> GatewayError:
    """The GatewayError for an error of botocore, aiohttp or the network.

    Messages name the operation, S3's error code and HTTP status only: never
    a credential, a signature or a signed URL.
    """
    if isinstance(error, GatewayError):
        return error
    what = f"S3 {op}" if op else "S3"
    if isinstance(error, ClientError):
        code, status = error_code(error)
        if code == "NoSuchBucket":
            return bucket_not_found(bucket)
        if code in _DENIED or status == 403:
            return credentials_refused(
                what, "S3", bucket, code or str(status), s3_bucket=bucket, s3_code=code
            )
        meant = object_status_error(
            _status_meant(code, status), key=key, condition=condition or "if_match"
        )
        if meant is not None:
            return meant
        if code == "NoSuchUpload":
            return backend_unavailable(
                backend=KIND, detail=f"{what}: the multipart upload no longer exists"
            )
        if code in _INVALID_REQUEST:
            # What the request asked of S3 (a storage class, an encryption
            # setting) is not valid there: the caller's to fix, not a fault.
            return GatewayError(
                Reason.INVALID_ARGUMENT,
                f"{what} refused the request as invalid ({code}, HTTP {status}): check "
                "the storage class and server-side encryption settings",
                s3_code=code,
            )
        if code in _UNAVAILABLE or status >= 500 or status == 429:
            return backend_unavailable(
                backend=KIND, detail=f"{what} failed: {code or 'error'} (HTTP {status})"
            )
        return GatewayError(
            Reason.INTERNAL, f"{what} failed: {code or 'error'} (HTTP {status})", s3_code=code
        )
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return no_credentials(what, "S3", bucket, s3_bucket=bucket)
    return backend_unavailable(backend=KIND, detail=f"{what} failed: {type(error).__name__}")


def quote_etag(etag: str) -> str:
    return etag if etag == "*" or etag.startswith('"') else f'"{etag}"'


def unquote_etag(etag: str) -> str:
    etag = etag.removeprefix("W/")
    return etag[1:-1] if len(etag) >= 2 and etag[0] == etag[-1] == '"' else etag


def generation_of(last_modified: datetime, etag: str) -> int:
    """The generation of an S3 object (S3 has no portable one).

    Whole seconds of LastModified times 10**6, plus the CRC-32 of the ETag
    modulo 10**6. S3's Last-Modified header has one-second resolution (only
    listings show milliseconds, and not everywhere), so HEAD, GET, List and
    writes all agree on this value; the ETag part tells apart two different
    writes within the same second. It increases from one second to the next,
    and it is not a timestamp in microseconds.
    """
    seconds = int(last_modified.timestamp())
    return seconds * 1_000_000 + zlib.crc32(etag.encode()) % 1_000_000


def checksums_from(values: Mapping[str, str]) -> tuple[int | None, bytes | None]:
    crc = values.get(META_CRC32C, "").lower()
    sha = values.get(META_SHA256, "").lower()
    return (
        int(crc, 16) if _HEX8.fullmatch(crc) else None,
        bytes.fromhex(sha) if _HEX64.fullmatch(sha) else None,
    )


def new_generation() -> dict[str, str]:
    """The metadata entry giving a new write its generation."""
    return {META_GENERATION: str(time.time_ns() // 1000)}


def is_multipart_etag(etag: str) -> bool:
    return "-" in etag


@dataclass
class S3Context:
    """The client and location a backend and its readers and writers use."""

    client: Any
    bucket: str
    prefix: str
    bucket_seen: bool = False

    def s3_key(self, key: str) -> str:
        return self.prefix + key

    @contextlib.contextmanager
    def errors(self, key: str = "", condition: str = "", op: str = "") -> Iterator[None]:
        """Turn botocore/network errors raised inside into GatewayErrors."""
        try:
            yield
        except GatewayError:
            raise
        except S3_ERRORS as error:
            mapped = map_error(error, bucket=self.bucket, key=key, condition=condition, op=op)
            if mapped.reason is Reason.BUCKET_NOT_FOUND:
                self.bucket_seen = False
            raise mapped from error

    async def check_bucket(self) -> None:
        """HEAD the bucket: BUCKET_NOT_FOUND (or another error) unless it exists."""
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if error_code(error)[1] == 404:
                self.bucket_seen = False
                raise bucket_not_found(self.bucket) from error
            with self.errors(op="HeadBucket"):
                raise
        except NETWORK_ERRORS:
            with self.errors(op="HeadBucket"):
                raise
        self.bucket_seen = True

    async def tag_checksums(self, key: str, etag: str) -> tuple[int | None, bytes | None]:
        """Checksums kept in object tags (multipart objects), if they belong
        to this ETag; (None, None) otherwise or when tags cannot be read."""
        try:
            response = await self.client.get_object_tagging(
                Bucket=self.bucket, Key=self.s3_key(key)
            )
        except S3_ERRORS as error:
            log.debug("S3 GetObjectTagging on %r failed: %r", key, error)
            return None, None
        tags = {t["Key"]: t["Value"] for t in response.get("TagSet", [])}
        if tags.get(TAG_ETAG) != etag:
            return None, None
        return checksums_from(tags)

    async def meta_from(
        self, key: str, response: Mapping[str, Any], *, size: int, tags: bool = True
    ) -> ObjectMeta:
        """ObjectMeta from a HeadObject or GetObject response."""
        etag = unquote_etag(str(response.get("ETag", "")))
        last_modified: datetime = response["LastModified"]
        s3_metadata: Mapping[str, str] = response.get("Metadata", {})
        crc32c, sha256 = checksums_from(s3_metadata)
        if tags and crc32c is None and sha256 is None and is_multipart_etag(etag):
            crc32c, sha256 = await self.tag_checksums(key, etag)
        stamped = s3_metadata.get(META_GENERATION, "")
        generation = int(stamped) if stamped.isdigit() else generation_of(last_modified, etag)
        time_ns = int(last_modified.timestamp()) * 1_000_000_000
        return ObjectMeta(
            key=key,
            size=size,
            etag=etag,
            generation=generation,
            create_time_ns=time_ns,
            update_time_ns=time_ns,
            content_type=str(response.get("ContentType") or DEFAULT_CONTENT_TYPE),
            metadata=user_metadata(s3_metadata),
            crc32c=crc32c,
            sha256=sha256,
            # HEAD and GET omit the header for STANDARD; listings name it.
            storage_class=str(response.get("StorageClass") or "STANDARD"),
        )

    async def head_or_none(self, key: str, *, tags: bool = True) -> ObjectMeta | None:
        """HeadObject; None when the object is missing (BUCKET_NOT_FOUND when
        the bucket is: a HEAD's 404 has no body to tell them apart, so the
        first miss HEADs the bucket too)."""
        try:
            response = await self.client.head_object(Bucket=self.bucket, Key=self.s3_key(key))
        except ClientError as error:
            if not is_not_found(error):
                with self.errors(key, op="HeadObject"):
                    raise
            if not self.bucket_seen:
                await self.check_bucket()
            return None
        except NETWORK_ERRORS:
            with self.errors(key, op="HeadObject"):
                raise
        self.bucket_seen = True
        return await self.meta_from(key, response, size=int(response["ContentLength"]), tags=tags)
