"""Property: whatever a client sends over gRPC, the gateway never answers
INTERNAL or UNKNOWN, and a request it refuses changes nothing stored.

Arbitrary request messages (keys, metadata, content types, offsets, limits,
expiries, page tokens, upload ids, preconditions) and arbitrary bytes are sent
to every RPC of a running gateway, on the memory and local backends."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import run_gateway
from tests.rpc_calls import crc

SERVICE = "/storagegw.v1.StorageService/"
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
EXAMPLES = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

INT64 = st.integers(-(2**63), 2**63 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
# Any text protobuf can carry (no lone surrogates: they are not UTF-8).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
LONG_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1000, max_size=1100)
VALID_KEYS = st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9._-]{1,8}){0,2}", fullmatch=True)
KEYS = st.one_of(
    VALID_KEYS,
    TEXT,
    LONG_TEXT,
    st.sampled_from(["", "/", "a//b", "../x", "a/./b", ".storagegw/x", "a\\b", "a\x00b", "é"]),
)
BUCKETS = st.one_of(st.just(""), st.just("default"), TEXT)
CONTENT_TYPES = st.one_of(
    st.just(""),
    st.sampled_from(["text/plain", "text/plain; charset=utf-8", 'a/b; q="x y"']),
    TEXT,
    st.text(min_size=200, max_size=400).map(lambda text: "text/" + text),
    st.builds(lambda a, b: f"{a}/{b}", TEXT, TEXT),
)
METADATA = st.dictionaries(TEXT, st.one_of(TEXT, st.text(min_size=2000, max_size=4200)), max_size=4)
PRECONDITIONS = st.builds(
    pb.Preconditions,
    if_match=st.one_of(st.just(""), st.just("*"), TEXT),
    if_none_match=st.one_of(st.just(""), st.just("*"), TEXT),
    if_generation_match=st.one_of(st.none(), INT64),
    if_generation_not_match=st.one_of(st.none(), INT64),
)
CHECKSUMS = st.builds(
    pb.ObjectChecksums,
    crc32c=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    sha256=st.one_of(st.just(b""), st.binary(max_size=40)),
)
SPECS = st.builds(
    pb.PutSpec,
    bucket=BUCKETS,
    key=KEYS,
    content_type=CONTENT_TYPES,
    metadata=METADATA,
    size=st.one_of(st.none(), INT64),
    expected_checksums=st.one_of(st.none(), CHECKSUMS),
    preconditions=st.one_of(st.none(), PRECONDITIONS),
    storage_class=st.one_of(st.just(""), TEXT),
    server_side_encryption=st.one_of(st.just(""), TEXT),
    kms_key_id=st.one_of(st.just(""), TEXT),
)
UPLOAD_IDS = st.one_of(TEXT, st.text("ABCDEFabcdef0123456789-_", min_size=20, max_size=200))


@st.composite
def put_streams(draw: Any) -> list[pb.PutRequest]:
    first = pb.PutRequest(write_offset=draw(st.one_of(st.just(0), INT64)))
    if draw(st.booleans()):
        first.spec.CopyFrom(draw(SPECS))
    else:
        first.upload_id = draw(UPLOAD_IDS)
    messages = [first]
    for data in draw(st.lists(st.binary(max_size=64), max_size=3)):
        message = pb.PutRequest(write_offset=draw(st.one_of(st.just(0), INT64)))
        message.chunk.content = data
        if draw(st.booleans()):
            message.chunk.crc32c = crc(data) if draw(st.booleans()) else draw(st.integers(0, 9))
        if draw(st.booleans()):
            message.object_checksums.CopyFrom(draw(CHECKSUMS))
        messages.append(message)
    if draw(st.booleans()):
        messages[-1].finish_write = True
    if draw(st.booleans()):
        messages.append(pb.PutRequest(finish_write=draw(st.booleans())))
    return messages


@pytest.fixture(scope="module", params=["memory", "local"])
def target(request: Any, tmp_path_factory: Any) -> Iterator[str]:
    data_dir: Path = tmp_path_factory.mktemp(f"properties-{request.param}")
    with run_gateway({"STORAGE_BACKEND": request.param}, data_dir) as running:
        yield running.target


@pytest.fixture(scope="module")
def channel(target: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(target) as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> storage_pb2_grpc.StorageServiceStub:
    return storage_pb2_grpc.StorageServiceStub(channel)


def stored(stub: storage_pb2_grpc.StorageServiceStub) -> list[tuple[str, int, str]]:
    """What the default bucket holds: (key, generation, etag) of every object."""
    found, token = [], ""
    while True:
        page = stub.List(pb.ListRequest(page_token=token), timeout=30)
        found += [(o.key, o.generation, o.etag) for o in page.objects]
        token = page.next_page_token
        if not token:
            return found


def outcome(call: Any, request: Any) -> tuple[grpc.StatusCode, str]:
    """The call's status code and message; a streamed response is read to its end."""
    try:
        result = call(request, timeout=30)
        if isinstance(result, Iterator):
            for _ in result:
                pass
    except grpc.RpcError as error:
        return error.code(), error.details()  # type: ignore[attr-defined]
    return grpc.StatusCode.OK, ""


def check(stub: Any, call: Any, request: Any, *, mutates: bool = True) -> None:
    """call(request) is not INTERNAL/UNKNOWN; refused, it stored nothing."""
    before = stored(stub) if mutates else None
    code, message = outcome(call, request)
    assert code not in FORBIDDEN, f"{code.name}: {message}"
    if code != grpc.StatusCode.OK and mutates:
        assert stored(stub) == before


@EXAMPLES
@given(messages=put_streams())
def test_put(stub: Any, messages: list[pb.PutRequest]) -> None:
    check(stub, lambda request, timeout: stub.Put(iter(request), timeout=timeout), messages)


@EXAMPLES
@given(spec=SPECS)
def test_start_upload(stub: Any, spec: pb.PutSpec) -> None:
    check(stub, stub.StartUpload, pb.StartUploadRequest(spec=spec))


@EXAMPLES
@given(upload_id=UPLOAD_IDS)
def test_query_and_abort_upload(stub: Any, upload_id: str) -> None:
    check(stub, stub.QueryUpload, pb.QueryUploadRequest(upload_id=upload_id), mutates=False)
    check(stub, stub.AbortUpload, pb.AbortUploadRequest(upload_id=upload_id))


@EXAMPLES
@given(
    bucket=BUCKETS,
    key=KEYS,
    offset=st.one_of(st.integers(-10, 10), INT64),
    limit=st.one_of(st.none(), st.integers(-10, 10), INT64),
    preconditions=st.one_of(st.none(), PRECONDITIONS),
)
def test_get_and_head(
    stub: Any, bucket: str, key: str, offset: int, limit: Any, preconditions: Any
) -> None:
    stub.Put(
        iter(
            [
                pb.PutRequest(spec=pb.PutSpec(key="get/me")),
                pb.PutRequest(finish_write=True, chunk=pb.ChecksummedData(content=b"0123456789")),
            ]
        )
    )
    for target_key in (key, "get/me"):
        request = pb.GetRequest(
            bucket=bucket,
            key=target_key,
            read_offset=offset,
            read_limit=limit,
            preconditions=preconditions,
        )
        check(stub, stub.Get, request, mutates=False)
        check(
            stub,
            stub.Head,
            pb.HeadRequest(bucket=bucket, key=target_key, preconditions=preconditions),
            mutates=False,
        )


@EXAMPLES
@given(bucket=BUCKETS, key=KEYS, preconditions=st.one_of(st.none(), PRECONDITIONS))
def test_delete(stub: Any, bucket: str, key: str, preconditions: Any) -> None:
    check(stub, stub.Delete, pb.DeleteRequest(bucket=bucket, key=key, preconditions=preconditions))


@EXAMPLES
@given(
    bucket=BUCKETS,
    prefix=st.one_of(st.just(""), KEYS),
    delimiter=st.one_of(st.just(""), st.just("/"), TEXT, st.text(min_size=60, max_size=80)),
    start_after=st.one_of(st.just(""), KEYS),
    page_size=INT32,
    page_token=st.one_of(
        st.just(""),
        TEXT,
        st.binary(max_size=40).map(lambda raw: base64.urlsafe_b64encode(b"\x01" + raw).decode()),
    ),
)
def test_list(
    stub: Any,
    bucket: str,
    prefix: str,
    delimiter: str,
    start_after: str,
    page_size: int,
    page_token: str,
) -> None:
    request = pb.ListRequest(
        bucket=bucket,
        prefix=prefix,
        delimiter=delimiter,
        start_after=start_after,
        page_size=page_size,
        page_token=page_token,
    )
    check(stub, stub.List, request, mutates=False)


@EXAMPLES
@given(
    bucket=BUCKETS,
    key=KEYS,
    method=st.one_of(
        st.sampled_from([pb.SIGNED_METHOD_GET, pb.SIGNED_METHOD_PUT, pb.SIGNED_METHOD_POST]),
        st.integers(-1, 5),
    ),
    seconds=st.one_of(
        st.none(), st.sampled_from([2**63 - 1, -(2**63), 0]), INT64, st.integers(-5, 10**6)
    ),
    nanos=st.integers(-999_999_999, 999_999_999),
    content_type=CONTENT_TYPES,
    download=st.booleans(),
    filename=st.one_of(st.just(""), TEXT, LONG_TEXT),
    max_size=st.one_of(st.none(), INT64),
    min_size=st.one_of(st.none(), INT64),
)
def test_sign_url(
    stub: Any,
    bucket: str,
    key: str,
    method: int,
    seconds: Any,
    nanos: int,
    content_type: str,
    download: bool,
    filename: str,
    max_size: Any,
    min_size: Any,
) -> None:
    request = pb.SignUrlRequest(
        bucket=bucket,
        key=key,
        method=method,
        content_type=content_type,
        download=download,
        filename=filename,
        max_size=max_size,
        min_size=min_size,
    )
    if seconds is not None:
        request.expires_in.CopyFrom(Duration(seconds=seconds, nanos=nanos))
    check(stub, stub.SignUrl, request, mutates=False)


@EXAMPLES
@given(
    source_bucket=BUCKETS,
    source_key=st.one_of(st.just("copy/source"), KEYS),
    destination_bucket=BUCKETS,
    destination_key=KEYS,
    content_type=CONTENT_TYPES,
    metadata=METADATA,
    replace_metadata=st.booleans(),
    source_preconditions=st.one_of(st.none(), PRECONDITIONS),
    destination_preconditions=st.one_of(st.none(), PRECONDITIONS),
)
def test_copy(stub: Any, **fields: Any) -> None:
    stub.Put(
        iter([pb.PutRequest(spec=pb.PutSpec(key="copy/source")), pb.PutRequest(finish_write=True)])
    )
    check(stub, stub.Copy, pb.CopyRequest(**fields))


METHODS = {
    "Put": "stream_unary",
    "Get": "unary_stream",
    "Head": "unary_unary",
    "Delete": "unary_unary",
    "List": "unary_unary",
    "SignUrl": "unary_unary",
    "Copy": "unary_unary",
    "StartUpload": "unary_unary",
    "QueryUpload": "unary_unary",
    "AbortUpload": "unary_unary",
}


@EXAMPLES
@given(
    method=st.sampled_from(sorted(METHODS)),
    raw=st.one_of(
        st.binary(max_size=200),
        # Valid framing around bytes that are not UTF-8, in any string field.
        st.builds(
            lambda number, payload: bytes([(number << 3) | 2, len(payload)]) + payload,
            st.integers(1, 12),
            st.binary(min_size=1, max_size=60).filter(lambda b: not _is_utf8(b)),
        ),
    ),
)
def test_arbitrary_bytes(stub: Any, channel: grpc.Channel, method: str, raw: bytes) -> None:
    kind = METHODS[method]
    call = getattr(channel, kind)(SERVICE + method)
    request: Any = iter([raw, raw]) if kind == "stream_unary" else raw
    check(stub, lambda request, timeout: call(request, timeout=timeout), request)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
