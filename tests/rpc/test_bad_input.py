"""Bad input is the client's fault: INVALID_ARGUMENT (or another client-error
status) with a reason and a message naming the problem, never INTERNAL or
UNKNOWN, and nothing stored. Covers content types, metadata through Copy,
oversized chunks, bytes that are not a valid message, huge expiries, and
what the access log records when a response cannot be sent."""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterator
from urllib.parse import urlsplit

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from gateway.domain.objects import WriteOptions
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests import drivers
from tests.rpc_calls import call_error, crc, put, put_messages

SERVICE = "/storagegw.v1.StorageService/"

BAD_CONTENT_TYPES = [
    pytest.param("text/plain\r\nX-Injected: 1", id="crlf"),
    pytest.param("text/plain\n", id="lf"),
    pytest.param("text/pl\x00ain", id="nul"),
    pytest.param("text/" + "x" * 300, id="too-long"),
    pytest.param("plain", id="no-subtype"),
    pytest.param("text/plain; charset", id="parameter-without-value"),
    pytest.param("text /plain", id="space-in-type"),
    pytest.param("tëxt/plain", id="non-ascii"),
    pytest.param('text/plain; a="unterminated', id="open-quote"),
]
GOOD_CONTENT_TYPES = [
    "text/plain",
    'text/plain; charset="utf-8"',
    "application/vnd.api+json;version=2",
    "multipart/form-data; boundary=----abc123",
    "a/" + "b" * 254,  # 256 bytes, the limit
]


@pytest.fixture(params=["memory", "local"])
def served(request, gateway_factory):
    return gateway_factory(STORAGE_BACKEND=request.param)


@pytest.fixture
def stub(served) -> Iterator[storage_pb2_grpc.StorageServiceStub]:
    with grpc.insecure_channel(served.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


def assert_nothing_stored(stub):
    assert list(stub.List(pb.ListRequest()).objects) == []
    code, reason, _ = call_error(stub.Head, pb.HeadRequest(key="k"))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")


# --- content types -----------------------------------------------------------


@pytest.mark.parametrize("content_type", BAD_CONTENT_TYPES)
def test_put_refuses_bad_content_type(stub, content_type):
    spec = pb.PutSpec(key="k", content_type=content_type)
    code, reason, message = call_error(stub.Put, put_messages("k", b"data", spec=spec))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CONTENT_TYPE")
    assert "content_type" in message
    assert_nothing_stored(stub)


@pytest.mark.parametrize("content_type", BAD_CONTENT_TYPES)
def test_start_upload_refuses_bad_content_type(stub, content_type):
    spec = pb.PutSpec(key="k", content_type=content_type)
    code, reason, _ = call_error(stub.StartUpload, pb.StartUploadRequest(spec=spec))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CONTENT_TYPE")


@pytest.mark.parametrize("content_type", BAD_CONTENT_TYPES)
def test_copy_refuses_bad_content_type(stub, content_type):
    put(stub, "source", b"data")
    request = pb.CopyRequest(
        source_key="source", destination_key="k", content_type=content_type, replace_metadata=True
    )
    code, reason, _ = call_error(stub.Copy, request)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CONTENT_TYPE")
    code, _, _ = call_error(stub.Head, pb.HeadRequest(key="k"))
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("content_type", BAD_CONTENT_TYPES)
@pytest.mark.parametrize("method", [pb.SIGNED_METHOD_PUT, pb.SIGNED_METHOD_POST])
def test_sign_url_refuses_bad_content_type(stub, content_type, method):
    request = pb.SignUrlRequest(key="k", method=method, content_type=content_type)
    code, reason, _ = call_error(stub.SignUrl, request)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CONTENT_TYPE")


@pytest.mark.parametrize("content_type", GOOD_CONTENT_TYPES)
def test_valid_content_types_are_kept(stub, content_type):
    spec = pb.PutSpec(key="k", content_type=content_type)
    stub.Put(put_messages("k", b"data", spec=spec))
    assert stub.Head(pb.HeadRequest(key="k")).object.content_type == content_type
    copied = stub.Copy(
        pb.CopyRequest(
            source_key="k", destination_key="c", content_type=content_type, replace_metadata=True
        )
    )
    assert copied.object.content_type == content_type


def _http(url: str, method: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, f"{parts.path}?{parts.query}", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("X-Sgw-Reason") or ""
    finally:
        connection.close()


@pytest.mark.parametrize(
    "content_type", ["text/" + "x" * 300, "plain", "text/plain; charset", "text/plain, text/html"]
)
def test_signed_http_put_refuses_bad_content_type(stub, content_type):
    signed = stub.SignUrl(pb.SignUrlRequest(key="k", method=pb.SIGNED_METHOD_PUT))
    status, reason = _http(signed.url, "PUT", b"data", {"Content-Type": content_type})
    assert (status, reason) == (400, "INVALID_CONTENT_TYPE")
    assert_nothing_stored(stub)


def test_signed_http_post_refuses_bad_content_type(stub):
    signed = stub.SignUrl(pb.SignUrlRequest(key="k", method=pb.SIGNED_METHOD_POST))
    boundary = "sgwboundary"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="f"\r\n'
        f"Content-Type: text/{'x' * 300}\r\n\r\n"
        f"data\r\n--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    status, reason = _http(signed.url, "POST", body, headers)
    assert (status, reason) == (400, "INVALID_CONTENT_TYPE")
    assert_nothing_stored(stub)


# --- metadata through Copy -------------------------------------------------------


def test_copy_enforces_the_metadata_limit(stub):
    put(stub, "source", b"data")
    request = pb.CopyRequest(
        source_key="source",
        destination_key="k",
        metadata={"big": "x" * 9000},
        replace_metadata=True,
    )
    code, reason, message = call_error(stub.Copy, request)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert "8192" in message
    code, _, _ = call_error(stub.Head, pb.HeadRequest(key="k"))
    assert code == grpc.StatusCode.NOT_FOUND
    # At the limit it is accepted.
    request.metadata.clear()
    request.metadata["big"] = "x" * (8192 - 3)
    assert stub.Copy(request).object.metadata["big"] == "x" * 8189


# --- chunk size --------------------------------------------------------------------


def test_chunk_over_2_mib_is_refused(stub, served):
    data = b"x" * (2 * 1024 * 1024 + 1)
    code, reason, message = call_error(stub.Put, put_messages("k", data, chunk_size=len(data)))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STREAM")
    assert "2097152" in message
    assert_nothing_stored(stub)
    tmp = served.data_dir / "default" / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


def test_chunk_of_2_mib_is_accepted(stub):
    data = b"y" * (2 * 1024 * 1024)
    assert put(stub, "k", data, chunk_size=len(data)).size == len(data)


def test_chunk_over_2_mib_is_refused_in_a_resumable_upload(stub):
    upload_id = stub.StartUpload(pb.StartUploadRequest(spec=pb.PutSpec(key="k"))).upload_id
    data = b"z" * (3 * 1024 * 1024)
    messages = [
        pb.PutRequest(upload_id=upload_id),
        pb.PutRequest(chunk=pb.ChecksummedData(content=data, crc32c=crc(data))),
    ]
    code, reason, _ = call_error(stub.Put, iter(messages))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STREAM")
    assert stub.QueryUpload(pb.QueryUploadRequest(upload_id=upload_id)).persisted_size == 0


# --- bytes that are not a valid message --------------------------------------------


def _with_bad_utf8(message) -> bytes:
    """message serialized, with its placeholder "@@" turned into invalid UTF-8."""
    raw = message.SerializeToString()
    assert raw.count(b"@@") == 1
    return raw.replace(b"@@", b"\xc3\x28")


def _raw_error(call, *args) -> tuple[grpc.StatusCode, str, str]:
    return call_error(call, *args)


@pytest.fixture
def channel(served) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(served.target) as channel:
        yield channel


UNARY_BAD_UTF8 = [
    pytest.param("Head", pb.HeadRequest(key="k@@"), "HeadRequest.key", id="head"),
    pytest.param("Delete", pb.DeleteRequest(key="k@@"), "DeleteRequest.key", id="delete"),
    pytest.param("List", pb.ListRequest(prefix="@@"), "ListRequest.prefix", id="list"),
    pytest.param(
        "SignUrl",
        pb.SignUrlRequest(key="k", content_type="text/@@", method=pb.SIGNED_METHOD_PUT),
        "SignUrlRequest.content_type",
        id="sign-url",
    ),
    pytest.param(
        "Copy",
        pb.CopyRequest(source_key="s", destination_key="d", metadata={"m": "@@"}),
        "CopyRequest.metadata.value",
        id="copy-metadata",
    ),
    pytest.param(
        "QueryUpload",
        pb.QueryUploadRequest(upload_id="@@"),
        "QueryUploadRequest.upload_id",
        id="query-upload",
    ),
    pytest.param(
        "StartUpload",
        pb.StartUploadRequest(spec=pb.PutSpec(key="k", preconditions={"if_match": "@@"})),
        "StartUploadRequest.spec.preconditions.if_match",
        id="start-upload-nested",
    ),
]


@pytest.mark.parametrize(("method", "message", "field"), UNARY_BAD_UTF8)
def test_non_utf8_string_field_is_invalid_argument(channel, method, message, field):
    call = channel.unary_unary(SERVICE + method)
    code, reason, text = _raw_error(call, _with_bad_utf8(message))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert field in text
    assert "UTF-8" in text


def test_non_utf8_key_in_put_is_invalid_argument(channel, stub):
    first = _with_bad_utf8(pb.PutRequest(spec=pb.PutSpec(key="k@@")))
    rest = pb.PutRequest(
        finish_write=True, chunk=pb.ChecksummedData(content=b"data")
    ).SerializeToString()
    call = channel.stream_unary(SERVICE + "Put")
    code, reason, text = _raw_error(call, iter([first, rest]))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert "PutRequest.spec.key" in text
    assert list(stub.List(pb.ListRequest()).objects) == []


def test_non_utf8_in_a_later_put_message_stores_nothing(channel, stub):
    first = pb.PutRequest(spec=pb.PutSpec(key="k")).SerializeToString()
    later = _with_bad_utf8(pb.PutRequest(upload_id="@@", finish_write=True))
    call = channel.stream_unary(SERVICE + "Put")
    code, reason, _ = _raw_error(call, iter([first, later]))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert_nothing_stored(stub)


def test_non_utf8_key_in_get_is_invalid_argument(channel):
    call = channel.unary_stream(SERVICE + "Get")
    code, reason, text = _raw_error(call, _with_bad_utf8(pb.GetRequest(key="k@@")))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert "GetRequest.key" in text


@pytest.mark.parametrize(
    "raw", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x12\xff\xff\xff\xff\x0f"], ids=str
)
def test_malformed_protobuf_is_invalid_argument(channel, raw):
    call = channel.unary_unary(SERVICE + "Head")
    code, reason, text = _raw_error(call, raw)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert "HeadRequest" in text


# --- expiries ------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [2**63 - 1, -(2**63), 10**12])
def test_huge_expiry_is_invalid_expiry(stub, seconds):
    request = pb.SignUrlRequest(
        key="k", method=pb.SIGNED_METHOD_GET, expires_in=Duration(seconds=seconds)
    )
    code, reason, message = call_error(stub.SignUrl, request)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_EXPIRY")
    assert "expires_in" in message


# --- what the access log records ------------------------------------------------------


def test_access_log_records_what_the_client_got(memory_gateway, access_log, caplog):
    """An object stored before limits existed (here through the driver, which
    does not check them) makes a List response too large to send: the client
    gets an error, and the access log must say so, not OK."""
    backend = memory_gateway.backend()
    options = WriteOptions(metadata={"m": "x" * (5 * 1024 * 1024)})
    memory_gateway.run(drivers.put(backend, "old", b"data", options))
    with (
        caplog.at_level(logging.ERROR, logger="storagegw"),
        grpc.insecure_channel(
            memory_gateway.target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        ) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        code, _, message = call_error(stub.List, pb.ListRequest())
    record = access_log.wait("List")
    assert code != grpc.StatusCode.OK
    assert record.status == code.name  # type: ignore[attr-defined]
    assert "/" not in message
    assert any("message size limit" in r.getMessage() or r.exc_info for r in caplog.records)
