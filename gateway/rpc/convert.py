"""Conversions between protobuf messages and domain values: requests into the
core operations' specs, their results into responses. Done here, once, at the
edge; nothing past it sees a protobuf message."""

from __future__ import annotations

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.backends.base import ObjectReader
from gateway.core.batch_delete import BatchDeletion
from gateway.core.copying import CopySpec
from gateway.core.objects import BucketPage, ListSpec, ReadSpec
from gateway.core.signed_urls import Route, SignSpec
from gateway.core.signing import SignedMethod, SignedUrl
from gateway.domain.errors import invalid_argument
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, Conditions, ObjectMeta
from gateway.rpc.status import key_status
from storagegw.v1 import storage_pb2 as pb


def optional_int(message: Message, field: str) -> int | None:
    """The value of an integer field the proto marks `optional`; None when
    the message leaves it unset (0 is a value)."""
    if not message.HasField(field):
        return None
    value: int = getattr(message, field)
    return value


def _timestamp(ns: int) -> Timestamp:
    # As Timestamp.FromNanoseconds, without its Python-level checks and calls.
    seconds, nanos = divmod(ns, 1_000_000_000)
    return Timestamp(seconds=seconds, nanos=nanos)


def object_info(bucket: str, meta: ObjectMeta, *, with_metadata: bool = True) -> pb.ObjectInfo:
    info = pb.ObjectInfo(
        bucket=bucket,
        key=meta.key,
        size=meta.size,
        content_type=meta.content_type or DEFAULT_CONTENT_TYPE,
        etag=meta.etag,
        generation=meta.generation,
        sha256=meta.sha256 or b"",
        create_time=_timestamp(meta.create_time_ns),
        update_time=_timestamp(meta.update_time_ns),
        storage_class=meta.storage_class,
    )
    if with_metadata:
        info.metadata.update(meta.metadata)
    if meta.crc32c is not None:
        info.crc32c = meta.crc32c
    return info


def conditions(message: pb.Preconditions) -> Conditions:
    return Conditions(
        if_match=message.if_match,
        if_none_match=message.if_none_match,
        if_generation_match=optional_int(message, "if_generation_match"),
        if_generation_not_match=optional_int(message, "if_generation_not_match"),
    )


# --- requests in ---------------------------------------------------------------


def read_spec(request: pb.GetRequest) -> ReadSpec:
    return ReadSpec(
        bucket=request.bucket,
        key=request.key,
        offset=request.read_offset,
        limit=optional_int(request, "read_limit"),
        conditions=conditions(request.preconditions),
    )


def list_spec(request: pb.ListRequest) -> ListSpec:
    return ListSpec(
        bucket=request.bucket,
        prefix=request.prefix,
        delimiter=request.delimiter,
        start_after=request.start_after,
        page_size=request.page_size,
        page_token=request.page_token,
    )


def copy_spec(request: pb.CopyRequest) -> CopySpec:
    return CopySpec(
        source_bucket=request.source_bucket,
        source_key=request.source_key,
        destination_bucket=request.destination_bucket,
        destination_key=request.destination_key,
        source_conditions=conditions(request.source_preconditions),
        destination_conditions=conditions(request.destination_preconditions),
        replace_metadata=request.replace_metadata,
        content_type=request.content_type,
        metadata=dict(request.metadata),
    )


_SIGNED_METHODS: dict[int, SignedMethod] = {
    pb.SIGNED_METHOD_GET: "GET",
    pb.SIGNED_METHOD_PUT: "PUT",
    pb.SIGNED_METHOD_POST: "POST",
}
_ROUTES: dict[int, Route] = {
    pb.URL_ROUTE_UNSPECIFIED: "",
    pb.URL_ROUTE_CDN: "cdn",
    pb.URL_ROUTE_GATEWAY: "gateway",
    pb.URL_ROUTE_STORE: "store",
}
_ROUTE_VALUES: dict[str, pb.UrlRoute.ValueType] = {
    "cdn": pb.URL_ROUTE_CDN,
    "gateway": pb.URL_ROUTE_GATEWAY,
    "store": pb.URL_ROUTE_STORE,
}


def sign_spec(request: pb.SignUrlRequest) -> SignSpec:
    return SignSpec(
        bucket=request.bucket,
        key=request.key,
        method=_SIGNED_METHODS.get(request.method),
        # Not ToTimedelta(): a Duration of 2**63-1 seconds overflows it; the
        # signer refuses any value out of range with INVALID_EXPIRY.
        expires_in_s=(
            request.expires_in.seconds + request.expires_in.nanos / 1e9
            if request.HasField("expires_in")
            else None
        ),
        download=request.download,
        filename=request.filename,
        content_type=request.content_type,
        max_size=optional_int(request, "max_size"),
        min_size=optional_int(request, "min_size"),
        route=_route(request.route),
        client_ip=request.client_ip,
        not_before_unix=request.not_before.seconds if request.HasField("not_before") else None,
    )


def _route(value: int) -> Route:
    route = _ROUTES.get(value)
    if route is None:
        raise invalid_argument(f"route {value} is not a UrlRoute value")
    return route


# --- results out -----------------------------------------------------------------


def content_range(reader: ObjectReader) -> pb.ContentRange:
    return pb.ContentRange(start=reader.start, end=reader.end, complete_length=reader.meta.size)


def list_response(listed: BucketPage) -> pb.ListResponse:
    page = listed.page
    return pb.ListResponse(
        objects=[object_info(listed.bucket, meta) for meta in page.objects],
        common_prefixes=page.common_prefixes,
        next_page_token=page.next_page_token,
    )


def delete_objects_response(deleted: BatchDeletion) -> pb.DeleteObjectsResponse:
    return pb.DeleteObjectsResponse(
        results=[
            pb.DeleteObjectResult(
                key=result.key,
                existed=result.existed,
                status=None if result.error is None else key_status(result.error),
            )
            for result in deleted.results
        ]
    )


def sign_url_response(signed: SignedUrl) -> pb.SignUrlResponse:
    response = pb.SignUrlResponse(
        url=signed.url,
        method=signed.method,
        headers=signed.headers,
        form_fields=signed.form_fields,
        pending_upload=signed.pending_upload,
        route=_ROUTE_VALUES.get(signed.route, pb.URL_ROUTE_UNSPECIFIED),
    )
    response.expire_time.FromSeconds(signed.expire_time_unix)
    return response
