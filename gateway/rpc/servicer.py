"""StorageService: messages in and out; the work happens in drivers and helpers.

Errors are raised as GatewayError and mapped to statuses by the interceptor,
so no handler catches them.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from grpc.aio import ServicerContext

from gateway.core import calllog, copying, uploads
from gateway.core.buckets import Action, Buckets
from gateway.core.signing import SignedMethod, SignedUrl, UrlSigner
from gateway.core.upload_budget import UnfinishedBudget
from gateway.core.upload_ids import UploadIds
from gateway.domain.errors import invalid_argument
from gateway.rpc import convert, put_stream, wire
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc as pb_grpc

MAX_PAGE_SIZE = 1000
MAX_DELIMITER_BYTES = 64
# The message limit (GATEWAY_MAX_MESSAGE_SIZE) is at least 64 KiB above the
# chunk size, and one legal entry takes well under 64 KiB.
PAGE_HEADROOM = 64 * 1024

Context = ServicerContext[Any, Any]


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    chunk_size: int = 1024 * 1024
    max_object_size: int | None = None
    # Per bucket, what unfinished resumable uploads may hold (not named: no cap).
    unfinished_upload_caps: Mapping[str, int] = field(default_factory=dict)
    max_message_size: int = 4 * 1024 * 1024

    @property
    def page_max_bytes(self) -> int:
        """What a List page's entries may add up to (listing.entry_bytes): the
        message limit less room for the rest of the response and for one
        entry of the largest legal size (a page always holds one entry)."""
        return max(self.max_message_size - PAGE_HEADROOM, 1)


class StorageServicer(pb_grpc.StorageServiceServicer):
    def __init__(
        self,
        buckets: Buckets,
        signer: UrlSigner,
        settings: ServiceSettings,
        upload_ids: UploadIds,
    ) -> None:
        self._buckets = buckets
        self._signer = signer
        self._settings = settings
        self._put_limits = put_stream.PutLimits(settings.max_object_size)
        self._uploads = uploads.Uploads(
            buckets,
            upload_ids,
            self._put_limits,
            UnfinishedBudget(settings.unfinished_upload_caps),
        )

    async def Put(
        self, request_iterator: AsyncIterator[pb.PutRequest], context: Context
    ) -> pb.PutResponse:
        # Only read a message's chunk once: each access to a bytes field copies it.
        first = await put_stream.first_message(request_iterator)
        if first.WhichOneof("first_message") == "upload_id":
            segment = await self._uploads.put(first, request_iterator)
            response = pb.PutResponse(persisted_size=segment.persisted_size)
            if segment.meta is not None:
                response.object.CopyFrom(convert.object_info(segment.bucket, segment.meta))
            return response
        result = await put_stream.receive(first, request_iterator, self._buckets, self._put_limits)
        info = convert.object_info(result.bucket, result.meta)
        return pb.PutResponse(object=info, persisted_size=result.meta.size)

    async def StartUpload(
        self, request: pb.StartUploadRequest, context: Context
    ) -> pb.StartUploadResponse:
        started = await self._uploads.start(request.spec)
        response = pb.StartUploadResponse(upload_id=started.upload_id)
        response.expire_time.FromSeconds(started.ref.expire_time_unix)
        return response

    async def QueryUpload(
        self, request: pb.QueryUploadRequest, context: Context
    ) -> pb.QueryUploadResponse:
        ref, status = await self._uploads.query(request.upload_id)
        response = pb.QueryUploadResponse(
            persisted_size=status.persisted_size, complete=status.complete is not None
        )
        if status.complete is not None:
            response.persisted_size = status.complete.size
            response.object.CopyFrom(convert.object_info(ref.bucket, status.complete))
        response.expire_time.FromSeconds(ref.expire_time_unix)
        return response

    async def AbortUpload(
        self, request: pb.AbortUploadRequest, context: Context
    ) -> pb.AbortUploadResponse:
        existed = await self._uploads.abort(request.upload_id)
        return pb.AbortUploadResponse(existed=existed)

    # Yields GetResponse messages already encoded (wire.py), hence the override.
    async def Get(  # type: ignore[override]
        self, request: pb.GetRequest, context: Context
    ) -> AsyncIterator[bytes]:
        target = self._buckets.open(request.bucket, request.key, Action.READ)
        bucket, backend, key = target.bucket, target.backend, target.key
        limit = request.read_limit if request.HasField("read_limit") else None
        if limit is not None and limit < 0:
            raise invalid_argument(f"read_limit must not be negative, got {limit}")
        reader = await backend.open_read(
            key, request.read_offset, limit, convert.conditions(request.preconditions)
        )
        entry = calllog.current()
        try:
            head = wire.encode_head(
                convert.object_info(bucket, reader.meta),
                pb.ContentRange(
                    start=reader.start, end=reader.end, complete_length=reader.meta.size
                ),
            )
            chunks = reader.chunks(self._settings.chunk_size)
            async for message, size in wire.encoded_chunks(chunks, head):
                entry.bytes += size
                yield message
        finally:
            await reader.close()

    async def Head(self, request: pb.HeadRequest, context: Context) -> pb.HeadResponse:
        target = self._buckets.open(request.bucket, request.key, Action.READ)
        meta = await target.backend.head(target.key, convert.conditions(request.preconditions))
        return pb.HeadResponse(object=convert.object_info(target.bucket, meta))

    async def Delete(self, request: pb.DeleteRequest, context: Context) -> pb.DeleteResponse:
        target = self._buckets.open(request.bucket, request.key, Action.DELETE)
        existed = await target.backend.delete(target.key, convert.conditions(request.preconditions))
        return pb.DeleteResponse(existed=existed)

    async def List(self, request: pb.ListRequest, context: Context) -> pb.ListResponse:
        target = self._buckets.open(request.bucket, request.prefix, Action.LIST)
        bucket, backend, prefix = target.bucket, target.backend, target.key
        if request.page_size < 0:
            raise invalid_argument(f"page_size must not be negative, got {request.page_size}")
        if len(request.delimiter.encode()) > MAX_DELIMITER_BYTES:
            raise invalid_argument(f"delimiter longer than {MAX_DELIMITER_BYTES} bytes")
        page_size = min(request.page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        page = await backend.list(
            prefix,
            request.delimiter,
            request.start_after,
            page_size,
            request.page_token,
            self._settings.page_max_bytes,
        )
        return pb.ListResponse(
            objects=[convert.object_info(bucket, meta) for meta in page.objects],
            common_prefixes=page.common_prefixes,
            next_page_token=page.next_page_token,
        )

    async def SignUrl(self, request: pb.SignUrlRequest, context: Context) -> pb.SignUrlResponse:
        target = self._buckets.open(request.bucket, request.key, Action.SIGN)
        bucket, backend, key = target.bucket, target.backend, target.key
        methods: dict[int, SignedMethod] = {
            pb.SIGNED_METHOD_GET: "GET",
            pb.SIGNED_METHOD_PUT: "PUT",
            pb.SIGNED_METHOD_POST: "POST",
        }
        method = methods.get(request.method)
        if method is None:
            raise invalid_argument(
                "method must be SIGNED_METHOD_GET, SIGNED_METHOD_PUT or SIGNED_METHOD_POST"
            )
        # Not ToTimedelta(): a Duration of 2**63-1 seconds overflows it; the
        # signer refuses any value out of range with INVALID_EXPIRY.
        expires_in = (
            request.expires_in.seconds + request.expires_in.nanos / 1e9
            if request.HasField("expires_in")
            else None
        )
        max_size = request.max_size if request.HasField("max_size") else None
        if method == "POST" and self._settings.max_object_size is not None:
            # A POST policy is checked by whoever serves the URL, which may be
            # the storage itself: the gateway's own limit goes into it.
            limit = self._settings.max_object_size
            max_size = limit if max_size is None else min(max_size, limit)
        wanted = self._signer.check(
            method,
            expires_in,
            download=request.download,
            filename=request.filename,
            content_type=request.content_type,
            max_size=max_size,
            min_size=request.min_size if request.HasField("min_size") else None,
        )
        presigner = backend.capabilities.presigner
        if presigner is not None:
            presigned = await presigner.sign_url(
                key,
                wanted.method,
                math.ceil(wanted.expires_in_s),
                download=wanted.download,
                filename=wanted.filename,
                content_type=wanted.content_type,
                max_size=wanted.max_size,
                min_size=wanted.min_size,
            )
            signed = SignedUrl(
                presigned.url,
                wanted.method,
                wanted.expire_time_unix,
                presigned.headers,
                presigned.form_fields,
            )
        else:
            signed = self._signer.sign_checked(bucket, key, wanted)
        response = pb.SignUrlResponse(
            url=signed.url,
            method=signed.method,
            headers=signed.headers,
            form_fields=signed.form_fields,
        )
        response.expire_time.FromSeconds(signed.expire_time_unix)
        return response

    async def Copy(self, request: pb.CopyRequest, context: Context) -> pb.CopyResponse:
        bucket, meta = await copying.copy(
            self._buckets, request, max_size=self._settings.max_object_size
        )
        return pb.CopyResponse(object=convert.object_info(bucket, meta))
