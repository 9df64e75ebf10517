"""write_upload's flow driven by hand (no gateway, no clock), as
test_client_flows.py drives the others: what it resends after a broken
stream, and when it gives up."""

from __future__ import annotations

import pytest

from storagegw._effects import Call, Effect, Flow, SendPut, Sleep
from storagegw._part_writes import write_upload
from storagegw._retry import RetryPolicy
from storagegw._types import UploadStatus
from storagegw.errors import Internal, Unavailable
from storagegw.v1 import storage_pb2 as pb

NO_JITTER = RetryPolicy(initial_backoff=0.5, multiplier=2.0, jitter=0.0)
DATA = bytes(range(256)) * 40  # 10 KiB


def sent(effect: SendPut) -> tuple[pb.PutRequest, bytes, pb.PutRequest]:
    """The stream's first message, the bytes its messages carry, and its last
    message."""
    blocks = list(effect.blocks)
    assert all(len(block) <= 1024 for block in blocks)  # the chunk size: a message each
    head = effect.stream.start()
    messages = [] if head is None else [head]
    for block in blocks:
        messages += effect.stream.feed(block)
    messages.append(effect.stream.finish())
    parsed = [m if isinstance(m, pb.PutRequest) else pb.PutRequest.FromString(m) for m in messages]
    assert all(not m.upload_id for m in parsed[1:])  # the upload is named once, first
    return parsed[0], b"".join(m.chunk.content for m in parsed), parsed[-1]


def after_a_break(flow: Flow[UploadStatus], persisted: int) -> Effect:
    """Break the stream under way; answer the QueryUpload with `persisted`."""
    pause = flow.throw(Unavailable("connection reset"))
    assert pause == Sleep(0.5)
    query = flow.send(None)
    assert isinstance(query, Call)
    assert query.method == "QueryUpload"
    return flow.send(pb.QueryUploadResponse(persisted_size=persisted))


def test_a_part_is_one_stream_without_finish_write() -> None:
    flow = write_upload("u1", DATA, 4096, False, 1024, NO_JITTER, 5.0)
    effect = next(flow)
    assert isinstance(effect, SendPut)
    first, data, last = sent(effect)
    assert (first.upload_id, first.write_offset) == ("u1", 4096)
    assert data == DATA
    # The last message carries the last block: it ends where the part ends.
    end = last.write_offset + len(last.chunk.content)
    assert (end, last.finish_write) == (4096 + len(DATA), False)
    with pytest.raises(StopIteration) as end:
        flow.send(effect.stream.object_info(pb.PutResponse(persisted_size=12288)))
    assert end.value.value == UploadStatus("u1", 12288, complete=False)


def test_a_broken_part_is_resent_from_the_persisted_size() -> None:
    flow = write_upload("u1", DATA, 4096, True, 1024, NO_JITTER, 5.0)
    assert isinstance(next(flow), SendPut)
    again = after_a_break(flow, 4096 + 3000)
    assert isinstance(again, SendPut)
    first, data, last = sent(again)
    assert (first.upload_id, first.write_offset) == ("u1", 7096)
    assert data == DATA[3000:]
    assert last.finish_write


def test_a_finished_upload_answers_a_lost_last_part() -> None:
    flow = write_upload("u1", DATA, 0, True, 1024, NO_JITTER, 5.0)
    next(flow)
    flow.throw(Unavailable("connection reset"))
    flow.send(None)
    stored = pb.ObjectInfo(bucket="b", key="k", size=len(DATA))
    with pytest.raises(StopIteration) as end:
        flow.send(pb.QueryUploadResponse(persisted_size=len(DATA), complete=True, object=stored))
    status = end.value.value
    assert status.complete
    assert status.object.size == len(DATA)


def test_bytes_lost_before_the_part_are_an_error() -> None:
    """The gateway holds less than the part's offset: the caller's earlier
    bytes are gone, and this part cannot make up for them."""
    flow = write_upload("u1", DATA, 4096, False, 1024, NO_JITTER, 5.0)
    next(flow)
    with pytest.raises(Unavailable):
        after_a_break(flow, 1024)


def test_an_upload_finished_elsewhere_is_not_written_again() -> None:
    flow = write_upload("u1", DATA, 0, False, 1024, NO_JITTER, 5.0)
    next(flow)
    flow.throw(Unavailable("connection reset"))
    flow.send(None)
    stored = pb.ObjectInfo(bucket="b", key="k", size=3)
    with pytest.raises(Internal, match="is finished"):
        flow.send(pb.QueryUploadResponse(persisted_size=3, complete=True, object=stored))
