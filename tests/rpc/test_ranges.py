"""Ranged reads: offsets, limits, suffixes, empty and out-of-range requests."""

from __future__ import annotations

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from tests.rpc_calls import CHUNK, call_error, get, put

DATA = bytes(range(256)) * (3 * CHUNK // 256 + 5)  # a little over 3 chunks


@pytest.fixture
def stored(stub):
    put(stub, "r", DATA)
    return stub


@pytest.mark.parametrize(
    ("offset", "limit", "start", "end"),
    [
        (0, None, 0, len(DATA)),
        (10, 20, 10, 30),
        (CHUNK - 5, 10, CHUNK - 5, CHUNK + 5),
        (5, None, 5, len(DATA)),
        (-100, None, len(DATA) - 100, len(DATA)),
        (-100, 10, len(DATA) - 100, len(DATA) - 90),
        (-(len(DATA) + 50), None, 0, len(DATA)),  # longer suffix: whole object
        (len(DATA) - 3, 100, len(DATA) - 3, len(DATA)),  # limit past the end: clipped
        (7, 0, 7, 7),  # zero length
        (len(DATA), None, len(DATA), len(DATA)),  # at the end: empty
    ],
)
def test_range(stored, offset, limit, start, end):
    fields = {"read_offset": offset}
    if limit is not None:
        fields["read_limit"] = limit
    responses, body = get(stored, "r", **fields)
    assert body == DATA[start:end]
    assert responses[0].content_range == pb.ContentRange(
        start=start, end=end, complete_length=len(DATA)
    )
    assert responses[0].object.size == len(DATA)


def test_empty_range_still_sends_metadata(stored):
    responses, body = get(stored, "r", read_offset=3, read_limit=0)
    assert body == b""
    assert len(responses) == 1
    assert responses[0].object.key == "r"
    assert responses[0].chunk.HasField("crc32c")


def test_offset_past_end_is_out_of_range(stored):
    code, reason, message = call_error(
        stored.Get, pb.GetRequest(key="r", read_offset=len(DATA) + 1)
    )
    assert (code, reason) == (grpc.StatusCode.OUT_OF_RANGE, "INVALID_RANGE")
    assert str(len(DATA)) in message


def test_negative_limit_is_invalid(stored):
    code, reason, _ = call_error(stored.Get, pb.GetRequest(key="r", read_limit=-1))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


def test_empty_object_reads_from_zero(stub):
    put(stub, "empty", b"")
    responses, body = get(stub, "empty")
    assert body == b""
    assert responses[0].content_range.complete_length == 0
