"""The parallel download flow step by step, with no gateway: the test plays
the transport (see test_client_flows.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import pytest

from storagegw import _flows
from storagegw._effects import Blocking, Concurrently, Flow, OpenedRead, OpenRead, ReadChunkInto
from storagegw._resumable import ParallelDownload
from storagegw._types import ByteRange, ObjectInfo
from storagegw.errors import ChecksumMismatch
from storagegw.v1 import storage_pb2 as pb
from tests.client.test_client_flows import NO_JITTER, FakeReader, finish, read_into, start, stored

DATA = os.urandom(10_000)
PLAN = ParallelDownload(threshold=1000, streams=3)


def get_request(offset: int, conditions: pb.Preconditions | None) -> pb.GetRequest:
    return pb.GetRequest(bucket="b", key="k", read_offset=offset, preconditions=conditions)


def serve(effect: OpenRead, info: ObjectInfo, served: bytes) -> OpenedRead:
    """A Get of the range `effect` asks for, with the bytes of `served` there."""
    start_at = effect.request.read_offset
    end = start_at + effect.request.read_limit
    reader = FakeReader(info, start_at, effect.digest)
    reader.content_range = ByteRange(start_at, end, info.size)
    return OpenedRead(reader, reader.chunks([served[start_at:end]]))


def run_range(flow: Flow[object], info: ObjectInfo, served: bytes, opened: list[OpenRead]) -> None:
    """Play the transport for one range's flow to its end."""
    effect = start(flow)
    while True:
        if isinstance(effect, OpenRead):
            opened.append(effect)
            result: object = serve(effect, info, served)
        else:
            assert isinstance(effect, ReadChunkInto)  # a chunk, written in place
            result = read_into(effect)
        try:
            effect = flow.send(result)
        except StopIteration:
            return


def run_ranges(
    tmp_path: Path, served: bytes
) -> tuple[Flow[ObjectInfo], Concurrently, list[OpenRead]]:
    """Run the download until its ranges have run; (flow, the ranges, their Gets)."""
    info = stored(DATA, generation=9)
    flow = _flows.download(get_request, "k", tmp_path / "out.bin", None, NO_JITTER, None, PLAN)
    make_target = start(flow)
    assert isinstance(make_target, Blocking)
    first = flow.send(make_target.work())
    assert isinstance(first, OpenRead)
    assert (first.request.read_offset, first.request.read_limit) == (0, 1000)
    allocate = flow.send(serve(first, info, served))
    assert isinstance(allocate, Blocking)  # the temporary file at the object's size
    together = flow.send(allocate.work())
    assert isinstance(together, Concurrently)
    opened: list[OpenRead] = []
    for range_flow in together.flows:
        run_range(range_flow, info, served, opened)
    return flow, together, opened


def test_a_large_object_is_read_as_ranges_of_the_generation_first_seen(tmp_path: Path) -> None:
    flow, together, opened = run_ranges(tmp_path, DATA)
    # The first 1000 bytes (in the first range's flow), then 3 ranges of the
    # rest, each of generation 9.
    asked = [(get.request.read_offset, get.request.read_limit) for get in opened]
    assert asked == [(1000, 3000), (4000, 3000), (7000, 3000)]
    assert all(get.request.preconditions.if_generation_match == 9 for get in opened)
    commit = flow.send([None] * len(together.flows))
    assert isinstance(commit, Blocking)
    assert not (tmp_path / "out.bin").exists()
    assert finish(flow, commit.work()) == stored(DATA, generation=9)
    assert (tmp_path / "out.bin").read_bytes() == DATA


def test_a_range_with_other_bytes_fails_the_whole_object_check(tmp_path: Path) -> None:
    # Each chunk arrives as it was sent (the reader found its CRC32C right),
    # but the third range holds other bytes: the combined CRC32C tells.
    served = DATA[:5000] + bytes(b ^ 1 for b in DATA[5000:5010]) + DATA[5010:]
    flow, together, _ = run_ranges(tmp_path, served)
    with pytest.raises(ChecksumMismatch, match="crc32c"):
        flow.send([None] * len(together.flows))
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone


def test_stop_closes_the_gets_of_every_range(tmp_path: Path) -> None:
    info = stored(DATA, generation=9)
    flow = _flows.download(get_request, "k", tmp_path / "out.bin", None, NO_JITTER, None, PLAN)
    make_target = start(flow)
    assert isinstance(make_target, Blocking)
    first = flow.send(make_target.work())
    assert isinstance(first, OpenRead)
    opened_first = serve(first, info, DATA)
    allocate = flow.send(opened_first)
    assert isinstance(allocate, Blocking)
    together = flow.send(allocate.work())
    assert isinstance(together, Concurrently)
    second = start(together.flows[1])
    assert isinstance(second, OpenRead)
    opened_second = serve(second, info, DATA)
    assert isinstance(together.flows[1].send(opened_second), ReadChunkInto)
    together.stop()  # as the transport does when a range fails
    assert cast(FakeReader, opened_first.reader).closed
    assert cast(FakeReader, opened_second.reader).closed
    with pytest.raises(ChecksumMismatch):
        flow.throw(ChecksumMismatch("a range failed"))
    assert list(tmp_path.iterdir()) == []
