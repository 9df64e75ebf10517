"""A driver storing objects in a Google Cloud Storage bucket, kind "gcs".

google-cloud-storage is a blocking library: every call runs in a thread pool
of settings.threads threads owned by the backend, so the event loop never
waits on GCS and a slow GCS only slows the RPCs that use it. One client (and
one HTTP connection pool sized to the thread pool) per backend, created on
first use in the pool (finding credentials may block) and closed by close().

Credentials: the settings' credentials file, else Application Default
Credentials. With an emulator (STORAGE_EMULATOR_HOST) requests are
anonymous, and a credentials file given too only signs URLs.

Keys. Object name = settings.prefix + key; listings strip the prefix.

Metadata. User metadata is GCS custom metadata (keys keep their case). The
gateway's checksums are reserved entries sgw-crc32c and sgw-sha256, stripped
from what callers get back; ObjectMeta.crc32c is GCS's own CRC32C (the same
function), so objects written by other tools have one too.

Generation and ETag. ObjectMeta.generation is GCS's generation, and the ETag
is that generation in decimal (gcs_common.etag_of), so every precondition is
a generation precondition that GCS evaluates atomically.

Reads check their conditions against the object's metadata and then read
that generation only. Delete reads the metadata (the contract says whether
the object existed), then deletes with ifGenerationMatch set to what it read
when there are conditions. Copy is objects.rewrite, repeated with its
rewrite token until done (large or cross-location copies), pinned to the
source's generation, with the destination's conditions sent to GCS.

Resumable uploads are GCS resumable sessions with a record object under
`<prefix>.storagegw/uploads/` (gcs/uploads.py); listings hide that folder.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gateway.backends.base import Capabilities, ObjectReader, ObjectWriter
from gateway.backends.gcs.common import (
    GCS_ERRORS,
    KIND,
    GcsContext,
    checksum_entries,
    http_status,
    is_not_found,
    map_error,
    meta_from,
    resource_of,
    write_preconditions,
)
from gateway.backends.gcs.io import GcsReader, GcsWriter
from gateway.backends.gcs.listing import list_page
from gateway.backends.gcs.settings import CHUNK_MULTIPLE, MAX_CHUNK_SIZE, GcsSettings
from gateway.backends.gcs.uploads import GcsUploads
from gateway.backends.shared import presign
from gateway.backends.shared.resumable import ResumableUploads
from gateway.domain import ranges
from gateway.domain.conditions import check as check_conditions
from gateway.domain.conditions import check_existing
from gateway.domain.errors import (
    GatewayError,
    backend_unavailable,
    precondition_failed,
    unsupported,
)
from gateway.domain.objects import (
    NO_CONDITIONS,
    Conditions,
    ListPage,
    ListQuery,
    ObjectMeta,
    Presigned,
    PresignRequest,
    WriteOptions,
)

log = logging.getLogger(__name__)

MAX_POLICY_SIZE = 5 * 1024**4  # GCS's largest object: 5 TiB
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)


def emulator_url(host: str) -> str:
    """STORAGE_EMULATOR_HOST with a scheme (the variable often has none)."""
    return host.rstrip("/") if "://" in host else f"http://{host.rstrip('/')}"


def _load_credentials(path: str) -> tuple[Any, str | None]:
    """Credentials from the operator's file: a service-account key (the usual
    case, and the one that signs URLs locally), or another type google-auth
    knows (authorized_user, impersonated_service_account, external_account)."""
    import json
    import warnings

    import google.auth
    from google.oauth2 import service_account

    with open(path, encoding="utf-8") as file:
        info = json.load(file)
    if info.get("type") == "service_account":
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=SCOPES
        )
        return credentials, info.get("project_id")
    with warnings.catch_warnings():
        # It warns about files from untrusted sources; this one is the
        # operator's own configuration.
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded: tuple[Any, str | None] = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
            path, scopes=SCOPES
        )
    return loaded


@dataclasses.dataclass(frozen=True)
class Connection:
    """What connect() builds for one set of GcsSettings."""

    client: Any  # google.cloud.storage.Client
    session: Any  # its HTTP session (connection pool): close it when done
    signer: Any  # credentials that sign URLs; None when there are none
    retry: Any  # google.api_core.retry.Retry for every call


def connect(s: GcsSettings) -> Connection:
    """Credentials, an HTTP session and the client, as the driver uses them
    (blocks: finding credentials may ask a metadata server). The benchmark's
    direct client is built by this too."""
    import google.auth
    import requests.adapters
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import storage
    from google.cloud.storage.retry import DEFAULT_RETRY

    project = s.project
    credentials: Any = None
    if s.credentials_path:
        credentials, file_project = _load_credentials(s.credentials_path)
        project = project or file_project
    options: dict[str, Any] = {}
    if s.emulator_host:
        signer = credentials
        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        options["api_endpoint"] = emulator_url(s.emulator_host)
    else:
        if credentials is None:
            credentials, default_project = google.auth.default(scopes=SCOPES)
            project = project or default_project
        signer = credentials
    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    # One pooled connection per thread: requests keeps only 10 by default.
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=1, pool_maxsize=s.threads, max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    client = storage.Client(
        project=project,
        credentials=credentials,
        client_options=options or None,
        _http=session,
    )
    return Connection(client, session, signer, DEFAULT_RETRY.with_timeout(s.retry_deadline))


class GcsBackend:
    """One gateway bucket in a GCS bucket (under an optional key prefix)."""

    def __init__(self, settings: GcsSettings) -> None:
        # Checked here too: settings may be built in code, not only by config.
        if not settings.bucket:
            raise ValueError("GCS bucket name is required")
        size = settings.chunk_size
        if size % CHUNK_MULTIPLE or not CHUNK_MULTIPLE <= size <= MAX_CHUNK_SIZE:
            raise ValueError("GCS chunk_size must be a multiple of 256 KiB, at most 256 MiB")
        if settings.threads < 1:
            raise ValueError("GCS threads must be >= 1")
        self._settings = settings
        self._lock = asyncio.Lock()
        self._pool = ThreadPoolExecutor(settings.threads, thread_name_prefix="gcs")
        self._ctx: GcsContext | None = None
        self._signer: Any = None  # credentials that sign URLs, when there are any
        self._session: Any = None  # the client's HTTP session (connection pool)
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()
        uploads = ResumableUploads(GcsUploads(self._context, self.open_write, self._background))
        self.capabilities = Capabilities(presigner=self, uploads=uploads, cleaner=uploads)

    @property
    def kind(self) -> str:
        return KIND

    @property
    def settings(self) -> GcsSettings:
        return self._settings

    async def _context(self) -> GcsContext:
        if self._ctx is not None:
            return self._ctx
        async with self._lock:
            if self._closed:
                raise backend_unavailable(KIND, "the backend is closed")
            if self._ctx is None:
                loop = asyncio.get_running_loop()
                try:
                    self._ctx = await loop.run_in_executor(self._pool, self._connect)
                except GCS_ERRORS as error:
                    raise map_error(error, bucket=self._settings.bucket, op="connect") from error
            return self._ctx

    def _connect(self) -> GcsContext:
        """The client (in the pool: finding credentials may ask a metadata server)."""
        s = self._settings
        connection = connect(s)
        self._signer, self._session = connection.signer, connection.session
        return GcsContext(
            client=connection.client,
            bucket=connection.client.bucket(s.bucket),
            prefix=s.prefix,
            pool=self._pool,
            retry=connection.retry,
            chunk_size=s.chunk_size,
        )

    # Reading.

    async def head(self, key: str, conditions: Conditions = NO_CONDITIONS) -> ObjectMeta:
        ctx = await self._context()
        return check_existing(key, conditions, await ctx.head_or_none(key))

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        ctx = await self._context()
        meta = await self.head(key, conditions)
        start, end = ranges.resolve(meta.size, offset, limit)
        return GcsReader(ctx, meta, start, end)

    # Writing.

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        if options.server_side_encryption:
            # GCS always encrypts; a customer-managed key is kms_key_id.
            raise unsupported("server_side_encryption", KIND)
        ctx = await self._context()
        preconditions = write_preconditions(key, options.conditions)
        if preconditions.extra_not_match is not None:
            current = await ctx.head_or_none(key)
            if current is not None and current.generation == preconditions.extra_not_match:
                raise precondition_failed(key, "if_generation_not_match")
        return GcsWriter(
            ctx,
            key,
            options,
            preconditions,
            self._background,
            options.storage_class or self._settings.storage_class,
            options.kms_key_id or self._settings.kms_key,
        )

    # Deleting.

    async def delete(self, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
        ctx = await self._context()
        current = await ctx.head_or_none(key)
        check_conditions(key, conditions, current, read=False)
        if current is None:
            return False
        args: dict[str, Any] = {"retry": ctx.retry}
        if conditions.any:
            # Only the object the conditions were checked against.
            args["if_generation_match"] = current.generation
        condition = "if_match" if conditions.if_match else "conditions"
        try:
            await ctx.run(ctx.blob(key).delete, **args)
        except GCS_ERRORS as error:
            if is_not_found(error) and not conditions.any:
                return False  # deleted by someone else meanwhile
            if is_not_found(error) or http_status(error) == 412:
                raise precondition_failed(key, condition) from error
            with ctx.errors(key, condition, "objects.delete"):
                raise
        return True

    # Listing.

    async def list(self, query: ListQuery) -> ListPage:
        return await list_page(await self._context(), query)

    # Copying.

    async def copy(
        self,
        source_key: str,
        destination_key: str,
        source_conditions: Conditions,
        options: WriteOptions,
        replace_metadata: bool,
    ) -> ObjectMeta:
        """objects.rewrite, pinned to the source's generation as read, carrying
        the source's checksums into the destination's metadata."""
        ctx = await self._context()
        source = await self.head(source_key, source_conditions)
        preconditions = write_preconditions(destination_key, options.conditions)
        if preconditions.extra_not_match is not None:
            current = await ctx.head_or_none(destination_key)
            if current is not None and current.generation == preconditions.extra_not_match:
                raise precondition_failed(destination_key, "if_generation_not_match")
        if replace_metadata:
            content_type, metadata = options.content_type, dict(options.metadata)
        else:
            content_type, metadata = source.content_type, dict(source.metadata)
        metadata.update(checksum_entries(source.crc32c, source.sha256))
        destination = ctx.blob(destination_key)
        destination.content_type = content_type
        destination.metadata = metadata
        if storage_class := options.storage_class or self._settings.storage_class:
            destination.storage_class = storage_class
        if kms_key := options.kms_key_id or self._settings.kms_key:
            destination.kms_key_name = kms_key
        source_blob = ctx.blob(source_key)
        token: str | None = None
        condition = preconditions.condition or "source unchanged"
        while True:
            try:
                token, _, _ = await ctx.run(
                    destination.rewrite,
                    source_blob,
                    token=token,
                    if_source_generation_match=source.generation,
                    retry=ctx.retry,
                    **preconditions.kwargs(),
                )
            except GCS_ERRORS as error:
                if is_not_found(error) and preconditions.condition:
                    raise precondition_failed(destination_key, condition) from error
                if is_not_found(error) or http_status(error) == 412:
                    # The source changed since it was read, or the destination
                    # does not meet its conditions.
                    raise precondition_failed(destination_key, condition) from error
                with ctx.errors(destination_key, condition, "objects.rewrite"):
                    raise
            if token is None:
                break
        meta = meta_from(destination_key, resource_of(destination))
        # crc32c is GCS's own either way; sha256 is the source's.
        return dataclasses.replace(meta, sha256=source.sha256 or meta.sha256)

    # Signed URLs.

    async def sign_url(self, request: PresignRequest) -> Presigned:
        """A V4 signed URL (GET, PUT) or POST policy, signed for GCS itself."""
        presign.check_expiry(request, "GCS")
        ctx = await self._context()
        key, method = request.key, request.method
        expiration = datetime.timedelta(seconds=request.expires_in_s)
        blob = ctx.blob(key)
        if method == "POST":
            # The library adds the exact object name to the policy.
            fields, conditions = presign.post_policy(request, MAX_POLICY_SIZE)
            with ctx.errors(key, op="sign"):
                policy = await ctx.run(
                    self._sign_post, ctx.client, blob.name, expiration, conditions, fields
                )
            return presign.signed_post(policy)
        args: dict[str, Any] = {"version": "v4", "expiration": expiration, "method": method}
        headers: dict[str, str] = {}
        if method == "GET":
            if request.download:
                args["response_disposition"] = presign.download_disposition(request)
        elif method == "PUT":
            headers = presign.put_headers(request, KIND)
            if request.content_type:
                args["content_type"] = request.content_type
        else:
            raise unsupported(f"signed {method} URLs", KIND)
        if self._settings.emulator_host:
            args["api_access_endpoint"] = emulator_url(self._settings.emulator_host)
        with ctx.errors(key, op="sign"):
            url = await ctx.run(self._sign, blob, args)
        return Presigned(str(url), headers)

    def _sign(self, blob: Any, args: dict[str, Any]) -> str:
        """Sign a URL (in the pool: IAM signBlob is an HTTP call)."""
        return str(blob.generate_signed_url(**self._signing_identity(), **args))

    def _sign_post(
        self,
        client: Any,
        name: str,
        expiration: datetime.timedelta,
        conditions: Sequence[Any],
        fields: dict[str, str],
    ) -> dict[str, Any]:
        """Sign a POST policy (in the pool, as _sign)."""
        policy: dict[str, Any] = client.generate_signed_post_policy_v4(
            self._settings.bucket,
            name,
            expiration,
            conditions=conditions,
            fields=fields,
            **self._signing_identity(),
        )
        return policy

    def _signing_identity(self) -> dict[str, Any]:
        """How the library signs: with a local key, or through IAM signBlob."""
        from google.auth import credentials as auth_credentials
        from google.auth.transport.requests import Request

        signer = self._signer
        account = self._settings.signing_account
        if signer is None or isinstance(signer, auth_credentials.AnonymousCredentials):
            raise unsupported(
                "signed URLs without a credentials file (STORAGE_GCS_CREDENTIALS_PATH)", KIND
            )
        if isinstance(signer, auth_credentials.Signing) and not account:
            return {"credentials": signer}
        # Credentials that hold no private key (user, GCE, Workload Identity):
        # the IAM Credentials API signs as a service account (signBlob), which
        # needs roles/iam.serviceAccountTokenCreator on it.
        if not signer.valid:
            signer.refresh(Request())  # also tells GCE credentials their account
        account = account or getattr(signer, "service_account_email", None)
        if not account or account == "default":
            raise unsupported(
                "signed URLs with these credentials (set STORAGE_GCS_SIGNING_ACCOUNT)", KIND
            )
        return {"service_account_email": account, "access_token": signer.token}

    # Health.

    async def probe(self) -> None:
        try:
            ctx = await self._context()
            await ctx.check_bucket()
        except GatewayError as error:
            raise backend_unavailable(KIND, error.message) from error

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            if self._background:
                await asyncio.wait(set(self._background))
            ctx, self._ctx = self._ctx, None
        session, self._session = self._session, None
        if ctx is not None and session is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, session.close)
        # Threads still finishing a dropped download window end on their own.
        self._pool.shutdown(wait=False, cancel_futures=True)
