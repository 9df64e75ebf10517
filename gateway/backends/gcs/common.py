"""What the GCS driver's modules share: the error mapping (the one place that
knows google-cloud-storage's exceptions), ObjectMeta from object resources,
preconditions in GCS's terms, and GcsContext: the client, bucket and prefix,
and the thread pool every blocking call of the library runs in.

google-cloud-storage is untyped: its objects are typing.Any here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import contextvars
import functools
import http.client
import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import requests
import urllib3.exceptions
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud.storage import exceptions as media_exceptions

from gateway.backends.shared.object_status import object_status_error
from gateway.backends.shared.reserved_metadata import META_SHA256, user_metadata
from gateway.domain.errors import (
    GatewayError,
    Reason,
    backend_unavailable,
    credentials_refused,
    no_credentials,
    precondition_failed,
)
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, Conditions, ObjectMeta

log = logging.getLogger(__name__)

KIND = "gcs"

NETWORK_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)
GCS_ERRORS = (
    api_exceptions.GoogleAPIError,  # GoogleAPICallError (HTTP status) and RetryError
    media_exceptions.InvalidResponse,  # resumable uploads and downloads
    media_exceptions.DataCorruption,
    auth_exceptions.GoogleAuthError,
    *NETWORK_ERRORS,
)

P = ParamSpec("P")
T = TypeVar("T")


def http_status(error: BaseException) -> int:
    """The HTTP status behind an error of the library; 0 when there was none."""
    if isinstance(error, api_exceptions.GoogleAPICallError):
        return int(error.code or 0)
    if isinstance(error, media_exceptions.InvalidResponse):
        return int(getattr(error.response, "status_code", 0) or 0)
    return 0


def is_not_found(error: BaseException) -> bool:
    return http_status(error) == 404


def bucket_not_found(bucket: str) -> GatewayError:
    return GatewayError(
        Reason.BUCKET_NOT_FOUND, f"GCS bucket {bucket!r} does not exist", gcs_bucket=bucket
    )


def _gcs_reason(error: BaseException) -> str:
    """GCS's short error reason ("invalid", "required"...), never its message:
    messages quote request URLs, and an upload's URL is a capability."""
    errors = getattr(error, "errors", None) or []
    if errors and isinstance(errors[0], Mapping):
        return str(errors[0].get("reason", ""))[:64]
    return ""


def map_error(
    error: BaseException, *, bucket: str, key: str = "", condition: str = "", op: str = ""
) -> GatewayError:
    """The GatewayError for an error of google-cloud-storage, google-auth or
    the network. Messages name the operation, the HTTP status and the error's
    type only: never a credential, a token or a URL."""
    if isinstance(error, GatewayError):
        return error
    what = f"GCS {op}" if op else "GCS"
    if isinstance(error, api_exceptions.RetryError):
        # The library gave up retrying 429, 5xx or connection failures.
        cause = error.cause
        detail = type(cause).__name__ if cause is not None else "timeout"
        status = http_status(cause) if cause is not None else 0
        if status and not (status == 429 or status >= 500):
            return map_error(cause, bucket=bucket, key=key, condition=condition, op=op)
        return backend_unavailable(backend=KIND, detail=f"{what} failed after retries: {detail}")
    status = http_status(error)
    if status:
        if status in (401, 403):
            return credentials_refused(what, "GCS", bucket, f"HTTP {status}", gcs_bucket=bucket)
        meant = object_status_error(status, key=key, condition=condition or "if_generation_match")
        if meant is not None:
            return meant
        if status == 429 or status >= 500:
            return backend_unavailable(backend=KIND, detail=f"{what} failed (HTTP {status})")
        if status == 400:
            reason = _gcs_reason(error)
            return GatewayError(
                Reason.INVALID_ARGUMENT,
                f"{what} rejected the request (HTTP 400{': ' + reason if reason else ''})",
                gcs_reason=reason,
            )
        return GatewayError(Reason.INTERNAL, f"{what} failed (HTTP {status})")
    if isinstance(error, auth_exceptions.DefaultCredentialsError):
        return no_credentials(what, "GCS", bucket, gcs_bucket=bucket)
    if isinstance(error, auth_exceptions.RefreshError):
        return GatewayError(
            Reason.PERMISSION_DENIED,
            f"{what}: the GCS credentials could not be refreshed",
            gcs_bucket=bucket,
        )
    return backend_unavailable(backend=KIND, detail=f"{what} failed: {type(error).__name__}")


# --- object resources -----------------------------------------------------


def etag_of(generation: int) -> str:
    """The gateway's ETag of a GCS object: its generation in decimal.

    Every write gives an object a new generation, and GCS evaluates generation
    preconditions atomically, so if_match / if_none_match on an ETag become
    ifGenerationMatch / ifGenerationNotMatch. (GCS's own etag also changes on
    metadata updates, and md5Hash is missing on composite objects.)"""
    return str(generation)


def generation_of_etag(etag: str) -> int | None:
    """The generation an ETag names; None when it names none (no object has it)."""
    text = etag.removeprefix("W/").strip('"')
    return int(text) if text.isdigit() and len(text) <= 19 else None


def decode_crc32c(value: object) -> int | None:
    """GCS's crc32c field: base64 of the big-endian CRC32C."""
    if not isinstance(value, str) or not value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return int.from_bytes(raw, "big") if len(raw) == 4 else None


def _time_ns(value: object) -> int:
    if not isinstance(value, str) or not value:
        return 0
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return 0
    # Microseconds are all RFC 3339 gives here; integer maths avoids float rounding.
    seconds = int(moment.replace(microsecond=0).timestamp())
    return seconds * 1_000_000_000 + moment.microsecond * 1000


def meta_from(key: str, resource: Mapping[str, Any]) -> ObjectMeta:
    """ObjectMeta from a GCS object resource (JSON API), listed or not.

    crc32c is GCS's own (it is the same CRC32C, and every object has it, even
    one written by another tool); sha256 is the gateway's, from metadata."""
    metadata: Mapping[str, str] = resource.get("metadata") or {}
    sha_text = str(metadata.get(META_SHA256, "")).lower()
    sha256 = bytes.fromhex(sha_text) if len(sha_text) == 64 and _is_hex(sha_text) else None
    generation = int(resource.get("generation") or 0)
    return ObjectMeta(
        key=key,
        size=int(resource.get("size") or 0),
        etag=etag_of(generation),
        generation=generation,
        create_time_ns=_time_ns(resource.get("timeCreated")),
        update_time_ns=_time_ns(resource.get("updated") or resource.get("timeCreated")),
        content_type=str(resource.get("contentType") or DEFAULT_CONTENT_TYPE),
        metadata=user_metadata(metadata),
        crc32c=decode_crc32c(resource.get("crc32c")),
        sha256=sha256,
        storage_class=str(resource.get("storageClass") or "STANDARD"),
    )


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def resource_of(blob: Any) -> Mapping[str, Any]:
    """A Blob's object resource as GCS last returned it (the library keeps it
    in _properties; its typed accessors would re-parse every field)."""
    properties: Mapping[str, Any] = blob._properties
    return properties


# --- preconditions ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WritePreconditions:
    """Conditions on the object a write replaces, as GCS evaluates them
    (atomically, when the write completes)."""

    if_generation_match: int | None = None
    if_generation_not_match: int | None = None
    # The condition a 412 stands for, in the contract's words.
    condition: str = ""
    # A second ifGenerationNotMatch GCS cannot carry: checked by the driver.
    extra_not_match: int | None = None

    def kwargs(self) -> dict[str, int]:
        """Keyword arguments for google-cloud-storage calls."""
        args: dict[str, int] = {}
        if self.if_generation_match is not None:
            args["if_generation_match"] = self.if_generation_match
        if self.if_generation_not_match is not None:
            args["if_generation_not_match"] = self.if_generation_not_match
        return args


def write_preconditions(key: str, conditions: Conditions) -> WritePreconditions:
    """Conditions in GCS's terms. ETags are generations (etag_of), so every
    condition becomes ifGenerationMatch / ifGenerationNotMatch. Conditions no
    object can satisfy raise PRECONDITION_FAILED here."""
    matches: list[tuple[int, str]] = []
    not_matches: list[tuple[int, str]] = []
    if conditions.if_match:
        generation = generation_of_etag(conditions.if_match)
        if generation is None:  # names no object: fails whatever is stored
            raise precondition_failed(key=key, condition="if_match")
        matches.append((generation, "if_match"))
    if conditions.if_none_match == "*":
        matches.append((0, "if_none_match"))
    elif conditions.if_none_match:
        generation = generation_of_etag(conditions.if_none_match)
        if generation is not None:  # otherwise no object has it: always met
            not_matches.append((generation, "if_none_match"))
    if conditions.if_generation_match is not None:
        matches.append((conditions.if_generation_match, "if_generation_match"))
    if conditions.if_generation_not_match is not None:
        not_matches.append((conditions.if_generation_not_match, "if_generation_not_match"))
    if len({value for value, _ in matches}) > 1:
        # Two different generations at once: nothing satisfies both.
        raise precondition_failed(key=key, condition=matches[1][1])
    if matches:
        match, condition = matches[0]
        for value, name in not_matches:
            if value == match:
                raise precondition_failed(key=key, condition=name)
        # A generation match implies every other not-match.
        return WritePreconditions(if_generation_match=match, condition=condition)
    if not not_matches:
        return WritePreconditions()
    values = sorted({value for value, _ in not_matches})
    return WritePreconditions(
        if_generation_not_match=values[0],
        condition=not_matches[0][1],
        extra_not_match=values[1] if len(values) > 1 else None,
    )


# --- the context ------------------------------------------------------------


@dataclass
class GcsContext:
    """The client and location a backend and its readers and writers use."""

    client: Any
    bucket: Any  # google.cloud.storage.Bucket
    prefix: str
    pool: ThreadPoolExecutor
    retry: Any  # google.api_core.retry.Retry
    chunk_size: int
    bucket_seen: bool = False

    @property
    def bucket_name(self) -> str:
        return str(self.bucket.name)

    def name(self, key: str) -> str:
        return self.prefix + key

    def blob(self, key: str, generation: int | None = None) -> Any:
        return self.bucket.blob(self.name(key), generation=generation)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """fn(*args, **kwargs) in the pool: the library blocks, the loop must not."""
        return await self.submit(functools.partial(fn, *args, **kwargs))

    def submit(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """fn() in the pool, in a copy of the caller's context (as
        asyncio.to_thread does), so that what it reports of its requests
        (gateway/backends/observer.py) belongs to the call that made them."""
        context = contextvars.copy_context()
        return asyncio.get_running_loop().run_in_executor(self.pool, context.run, fn)

    @contextlib.contextmanager
    def errors(
        self, key: str = "", condition: str = "", op: str = "", *, missing: str = "object"
    ) -> Iterator[None]:
        """Turn the library's errors raised inside into GatewayErrors. A 404
        means a missing object, or with missing="bucket" a missing bucket."""
        try:
            yield
        except GatewayError:
            raise
        except GCS_ERRORS as error:
            if missing == "bucket" and is_not_found(error):
                self.bucket_seen = False
                raise bucket_not_found(self.bucket_name) from error
            raise map_error(
                error, bucket=self.bucket_name, key=key, condition=condition, op=op
            ) from error

    async def check_bucket(self) -> None:
        """Read the bucket's metadata: BUCKET_NOT_FOUND (or another error)
        unless it exists and can be read."""
        with self.errors(op="buckets.get", missing="bucket"):
            await self.run(self.bucket.reload, retry=self.retry)
        self.bucket_seen = True

    async def head_or_none(self, key: str) -> ObjectMeta | None:
        """The object's metadata; None when it is missing (BUCKET_NOT_FOUND
        when the bucket is: GCS's 404s do not reliably say which, so the first
        miss reads the bucket too)."""
        with self.errors(key, op="objects.get"):
            blob = await self.run(self.bucket.get_blob, self.name(key), retry=self.retry)
        if blob is None:
            if not self.bucket_seen:
                await self.check_bucket()
            return None
        self.bucket_seen = True
        return meta_from(key, resource_of(blob))
