"""The requests the clients build from their arguments (storagegw._common):
preconditions, Get, Put, List, Copy and SignUrl arguments, content types, and
the channel's options."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storagegw import _common
from storagegw.v1 import storage_pb2 as pb


def test_preconditions_are_none_when_empty_but_keep_generation_zero() -> None:
    assert _common.preconditions() is None
    conditions = _common.preconditions(if_generation_match=0)
    assert conditions is not None
    assert conditions.HasField("if_generation_match")
    conditions = _common.preconditions(if_none_match="*", if_match="e1")
    assert conditions == pb.Preconditions(if_none_match="*", if_match="e1")


def test_get_request() -> None:
    request = _common.get_request("b", "k", offset=-10)
    assert request.read_offset == -10
    assert not request.HasField("read_limit")
    assert _common.get_request("b", "k", length=0).HasField("read_limit")
    with pytest.raises(ValueError, match="length"):
        _common.get_request("b", "k", length=-1)


def test_put_spec() -> None:
    spec = _common.put_spec("b", "k", metadata={"a": "1"}, size=0)
    assert spec.HasField("size")
    assert spec.size == 0
    assert dict(spec.metadata) == {"a": "1"}
    assert not _common.put_spec("b", "k").HasField("size")


def test_list_request_page_size_bounds() -> None:
    assert _common.list_request("b", prefix="p/", delimiter="/").page_size == 1000
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="page_size"):
            _common.list_request("b", page_size=bad)


def test_sign_url_arguments() -> None:
    assert _common.signed_method("put") == pb.SIGNED_METHOD_PUT
    assert (_common.url_route("CDN"), _common.url_route(None)) == (pb.URL_ROUTE_CDN, 0)
    assert getattr(_common.url_lifetime(timedelta(minutes=5)), "seconds", None) == 300
    assert _common.url_lifetime(None) is None
    assert getattr(_common.url_lifetime(1.5), "nanos", None) == 500_000_000
    with pytest.raises(ValueError, match="method"):
        _common.signed_method("DELETE")
    with pytest.raises(ValueError, match="positive"):
        _common.url_lifetime(0)


def test_copy_request_replaces_metadata_only_when_asked() -> None:
    assert not _common.copy_request("a", "k", "b", "k2").replace_metadata
    request = _common.copy_request("a", "k", "b", "k2", content_type="text/plain")
    assert request.replace_metadata
    assert request.content_type == "text/plain"
    assert _common.copy_request("a", "k", "b", "k2", metadata={}).replace_metadata


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes.txt", "text/plain"),
        ("photo.JPG", "image/jpeg"),
        ("backup.tar.gz", "application/gzip"),
        ("no-extension", ""),
    ],
)
def test_guess_content_type(name: str, expected: str) -> None:
    assert _common.guess_content_type(name) == expected


def test_channel_options_allow_two_mib_chunks() -> None:
    options = dict(_common.channel_options())
    assert options["grpc.max_receive_message_length"] >= 4 * 1024 * 1024 + 1024
    assert options["grpc.max_send_message_length"] >= 4 * 1024 * 1024 + 1024
