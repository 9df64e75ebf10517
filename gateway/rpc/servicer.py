"""StorageService: each RPC converts its request into domain values
(gateway.rpc.convert), calls a core operation (gateway.core) and converts the
result back; the rules live in the operations, the bytes in the drivers.

Errors are raised as GatewayError and mapped to statuses by the interceptor,
so no handler catches them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from grpc.aio import ServicerContext

from gateway.backends.base import ENCODE_OFFLOAD_THRESHOLD
from gateway.core import (
    batch_delete,
    bucket_stats,
    calllog,
    copying,
    finalize,
    rescan,
    signed_urls,
    uploads,
    writes,
)
from gateway.core.buckets import Buckets
from gateway.core.lifecycle_plan import BucketLifecycle
from gateway.core.lifecycle_view import get_lifecycle
from gateway.core.objects import FoundPrefix, Objects
from gateway.core.signing import UrlSigner
from gateway.core.upload_budget import UnfinishedBudget
from gateway.core.upload_ids import UploadIds
from gateway.rpc import convert, put_stream, wire
from gateway.rpc.lifecycle_wire import lifecycle_response
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc as pb_grpc

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
    # Each bucket's lifecycle rules, placed (gateway/core/lifecycle_plan.py).
    lifecycles: Mapping[str, BucketLifecycle] = field(default_factory=dict)

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
        self._objects = Objects(buckets, settings.page_max_bytes)
        # The most a Get sends in one message encoded on the event loop.
        self._small_read = min(settings.chunk_size, ENCODE_OFFLOAD_THRESHOLD - 1)
        self._put_limits = writes.PutLimits(settings.max_object_size)
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
            segment = await self._uploads.put(put_stream.segment_of(first, request_iterator))
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
        started = await self._uploads.start(put_stream.spec_of(request.spec))
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
        read = await self._objects.read(convert.read_spec(request))
        reader = read.reader
        entry = calllog.current()
        try:
            head = wire.encode_head(
                convert.object_info(read.bucket, reader.meta), convert.content_range(reader)
            )
            # held() only for a range small enough to be served so: what it
            # returns counts as served (ObjectReader.held).
            held = reader.held() if reader.end - reader.start <= self._small_read else None
            if held is not None:
                # A small range read when it was opened: one message, encoded
                # here, without the read-ahead machinery of a stream.
                entry.bytes += len(held)
                yield wire.encode_chunk(held, head)
                return
            messages = wire.reader_messages(reader, self._settings.chunk_size, head)
            async for message, size in messages:
                entry.bytes += size
                yield message
        finally:
            await reader.close()

    async def Head(self, request: pb.HeadRequest, context: Context) -> pb.HeadResponse:
        conditions = convert.conditions(request.preconditions)
        if request.report_prefix:
            looked_up = await self._objects.lookup(request.bucket, request.key, conditions)
            if isinstance(looked_up, FoundPrefix):
                return pb.HeadResponse(is_prefix=True)
            found = looked_up
        else:
            found = await self._objects.head(request.bucket, request.key, conditions)
        return pb.HeadResponse(object=convert.object_info(found.bucket, found.meta))

    async def Delete(self, request: pb.DeleteRequest, context: Context) -> pb.DeleteResponse:
        existed = await self._objects.delete(
            request.bucket, request.key, convert.conditions(request.preconditions)
        )
        return pb.DeleteResponse(existed=existed)

    async def DeleteObjects(
        self, request: pb.DeleteObjectsRequest, context: Context
    ) -> pb.DeleteObjectsResponse:
        deleted = await batch_delete.delete_objects(self._buckets, request.bucket, request.keys)
        return convert.delete_objects_response(deleted)

    async def List(self, request: pb.ListRequest, context: Context) -> pb.ListResponse:
        return convert.list_response(await self._objects.list(convert.list_spec(request)))

    async def SignUrl(self, request: pb.SignUrlRequest, context: Context) -> pb.SignUrlResponse:
        signed = await signed_urls.sign_url(
            self._buckets,
            self._signer,
            convert.sign_spec(request),
            max_object_size=self._settings.max_object_size,
        )
        return convert.sign_url_response(signed)

    async def Copy(self, request: pb.CopyRequest, context: Context) -> pb.CopyResponse:
        copied = await copying.copy(
            self._buckets, convert.copy_spec(request), max_size=self._settings.max_object_size
        )
        return pb.CopyResponse(object=convert.object_info(copied.bucket, copied.meta))

    async def FinalizeUpload(
        self, request: pb.FinalizeUploadRequest, context: Context
    ) -> pb.FinalizeUploadResponse:
        done = await finalize.finalize(
            self._buckets,
            request.bucket,
            request.pending_upload,
            convert.conditions(request.preconditions),
            self._settings.max_object_size,
        )
        return pb.FinalizeUploadResponse(object=convert.object_info(done.bucket, done.meta))

    async def ScanObjects(
        self, request: pb.ScanObjectsRequest, context: Context
    ) -> pb.ScanObjectsResponse:
        report = await rescan.scan_objects(
            self._buckets,
            rescan.ScanRequest(
                request.bucket, request.prefix, request.page_size, request.page_token
            ),
        )
        return pb.ScanObjectsResponse(
            scanned=report.scanned,
            clean=report.clean,
            marked_clean=report.marked_clean,
            changed=report.changed,
            infected=[
                pb.ScanFind(
                    key=find.key,
                    signature=find.signature,
                    quarantine_bucket=find.quarantine_bucket,
                    quarantine_key=find.quarantine_key,
                )
                for find in report.infected
            ],
            next_page_token=report.next_page_token,
        )

    async def GetLifecycle(
        self, request: pb.GetLifecycleRequest, context: Context
    ) -> pb.GetLifecycleResponse:
        view = await get_lifecycle(self._buckets, self._settings.lifecycles, request.bucket)
        return lifecycle_response(view)

    async def GetBucketStats(
        self, request: pb.GetBucketStatsRequest, context: Context
    ) -> pb.GetBucketStatsResponse:
        found = await bucket_stats.bucket_stats(self._buckets, request.bucket)
        stats = found.stats
        return pb.GetBucketStatsResponse(
            bucket=found.bucket,
            dedup=found.dedup,
            objects=stats.objects,
            logical_bytes=stats.logical_bytes,
            blobs=stats.blobs,
            stored_bytes=stats.stored_bytes,
            dedup_ratio=stats.ratio,
            saved_bytes=stats.saved_bytes,
        )
