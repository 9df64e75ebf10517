"""The clients' flows, driven by hand: no gateway, no socket, no clock.

Each flow yields the I/O it needs (_effects.py) and is sent the results;
here the test plays the transport, so the retry and resume decisions can be
checked step by step, exactly as both Client and AsyncClient see them.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from storagegw import _flows
from storagegw._crc32c import crc32c
from storagegw._digests import ObjectDigest
from storagegw._effects import (
    BestEffort,
    Blocking,
    Call,
    Effect,
    Flow,
    OpenedRead,
    OpenRead,
    ReadChunk,
    ReadChunkInto,
    SendPut,
    Sleep,
)
from storagegw._resumable import ABORT_TIMEOUT, SegmentStream, UploadSource
from storagegw._retry import RetryPolicy
from storagegw._types import ByteRange, ObjectInfo
from storagegw.errors import (
    BucketNotFound,
    ObjectNotFound,
    PreconditionFailed,
    Unavailable,
)
from storagegw.v1 import storage_pb2 as pb

NO_JITTER = RetryPolicy(initial_backoff=0.5, multiplier=2.0, jitter=0.0)
DATA = bytes(range(256)) * 40  # 10 KiB


def start(flow: Flow[object]) -> Effect:
    return next(flow)


def finish(flow: Flow[object], result: object) -> object:
    with pytest.raises(StopIteration) as end:
        flow.send(result)
    return end.value.value


def stored(data: bytes, key: str = "k", generation: int = 7) -> ObjectInfo:
    return ObjectInfo(
        bucket="b",
        key=key,
        size=len(data),
        content_type="",
        generation=generation,
        crc32c=crc32c(data),
        sha256=hashlib.sha256(data).digest(),
    )


def send_all(effect: SendPut) -> None:
    """What a transport does with SendPut: read the blocks into the stream."""
    for block in effect.blocks:
        effect.stream.feed(block)
    effect.stream.finish()


def test_a_fresh_upload_sends_at_once_then_resumes_from_the_persisted_size() -> None:
    source = UploadSource(io.BytesIO(DATA), 4096)
    flow = _flows.resume_upload("u1", source, NO_JITTER, None, 5.0, fresh=True)

    first = start(flow)
    assert isinstance(first, SendPut)  # no QueryUpload for an upload just started
    assert isinstance(first.stream, SegmentStream)
    assert first.stream.offset == 0
    next(first.blocks)  # the connection breaks after one block went out

    pause = flow.throw(Unavailable("connection reset"))
    assert pause == Sleep(0.5)
    query = flow.send(None)
    assert isinstance(query, Call)
    assert (query.method, query.request, query.timeout) == (
        "QueryUpload",
        pb.QueryUploadRequest(upload_id="u1"),
        5.0,
    )

    resumed = flow.send(pb.QueryUploadResponse(persisted_size=4096))
    assert isinstance(resumed, SendPut)
    assert isinstance(resumed.stream, SegmentStream)
    assert resumed.stream.offset == 4096
    send_all(resumed)
    info = stored(DATA)
    assert finish(flow, info) == info
    assert source.digest.check(info, "test") == info  # every byte digested once


def test_an_upload_found_complete_is_verified_without_sending() -> None:
    source = UploadSource(io.BytesIO(DATA), 4096)
    flow = _flows.resume_upload("u1", source, NO_JITTER, None, None)
    query = start(flow)
    assert isinstance(query, Call)
    assert query.method == "QueryUpload"
    object_message = pb.ObjectInfo(
        bucket="b", key="k", size=len(DATA), crc32c=crc32c(DATA), generation=7
    )
    read_rest = flow.send(pb.QueryUploadResponse(complete=True, object=object_message))
    assert isinstance(read_rest, Blocking)  # the source is read, not sent
    read_rest.work()
    info = finish(flow, None)
    assert isinstance(info, ObjectInfo)
    assert info.generation == 7


def test_a_final_error_aborts_the_upload_best_effort() -> None:
    source = UploadSource(io.BytesIO(DATA), 4096)
    spec = pb.PutSpec(bucket="b", key="k")
    flow = _flows.put_resumable(spec, source, NO_JITTER, None, False, None, 5.0)

    start_call = start(flow)
    assert isinstance(start_call, Call)
    assert start_call.method == "StartUpload"
    first = flow.send(pb.StartUploadResponse(upload_id="u1"))
    assert isinstance(first, SendPut)

    abort = flow.throw(PreconditionFailed("the object changed"))
    assert abort == BestEffort(
        Call("AbortUpload", pb.AbortUploadRequest(upload_id="u1"), ABORT_TIMEOUT)
    )
    with pytest.raises(PreconditionFailed):
        flow.send(None)


def test_keep_upload_leaves_the_upload_for_later() -> None:
    source = UploadSource(io.BytesIO(DATA), 4096)
    sessions = []
    flow = _flows.put_resumable(
        pb.PutSpec(key="k"), source, NO_JITTER, None, True, sessions.append, None
    )
    start(flow)
    flow.send(pb.StartUploadResponse(upload_id="u1"))
    assert [session.upload_id for session in sessions] == ["u1"]
    with pytest.raises(KeyboardInterrupt):
        flow.throw(KeyboardInterrupt())


def test_start_upload_is_retried_until_the_policy_gives_up() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff=1.0, jitter=0.0)
    flow = _flows.put_resumable(
        pb.PutSpec(key="k"), UploadSource(io.BytesIO(b""), 1), policy, None, False, None, None
    )
    assert start(flow).method == "StartUpload"
    assert flow.throw(Unavailable("down")) == Sleep(1.0)
    assert flow.send(None).method == "StartUpload"
    assert flow.throw(Unavailable("down")) == Sleep(2.0)
    flow.send(None)
    with pytest.raises(Unavailable):
        flow.throw(Unavailable("still down"))


def test_exists_maps_a_missing_object_but_not_a_missing_bucket() -> None:
    request = pb.HeadRequest(bucket="b", key="k")
    flow = _flows.exists(request, None)
    start(flow)
    with pytest.raises(StopIteration) as end:
        flow.throw(ObjectNotFound("no such object"))
    assert end.value.value is False

    flow = _flows.exists(request, None)
    start(flow)
    with pytest.raises(BucketNotFound):
        flow.throw(BucketNotFound("no such bucket"))


def test_list_pages_asks_for_the_next_page_only_while_there_is_one() -> None:
    request = pb.ListRequest(bucket="b", page_size=1)
    tokens = []
    for page_flow in _flows.list_pages(request, None):
        call = start(page_flow)
        assert isinstance(call, Call)
        tokens.append(call.request.page_token)
        last = len(tokens) == 3
        finish(page_flow, pb.ListResponse(next_page_token="" if last else f"t{len(tokens)}"))
    assert tokens == ["", "t1", "t2"]


class FakeReader:
    """What the download flow uses of a reader: its info, the range it
    serves, close(), and (as the real reader's verifier does) counting each
    chunk in the download's digest as it hands it over."""

    def __init__(
        self, info: ObjectInfo, start: int = 0, digest: ObjectDigest | None = None
    ) -> None:
        self.info = info
        self.content_range = ByteRange(start, info.size, info.size)
        self.digest = digest
        self.closed = False

    def chunks(self, chunks: list[bytes]) -> Iterator[bytes]:
        offset = self.content_range.start
        for chunk in chunks:
            if self.digest is not None:
                self.digest.update(offset, chunk)
            offset += len(chunk)
            yield chunk

    def close(self) -> None:
        self.closed = True


def read_into(effect: ReadChunkInto) -> tuple[int, int] | None:
    """Play the transport for one ReadChunkInto: the next chunk, written."""
    chunk = next(effect.opened.chunks, None)
    return None if chunk is None else (len(chunk), effect.write(chunk))


def test_a_broken_download_resumes_from_the_verified_offset_of_the_same_generation(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "out.bin"

    def get_request(offset: int, conditions: pb.Preconditions | None) -> pb.GetRequest:
        return pb.GetRequest(bucket="b", key="k", read_offset=offset, preconditions=conditions)

    flow = _flows.download(get_request, "k", dest, None, NO_JITTER, None)
    make_target = start(flow)
    assert isinstance(make_target, Blocking)
    effect = flow.send(make_target.work())

    info = stored(DATA, generation=9)
    streams = [[DATA[:4096]], [DATA[4096:]]]
    for attempt, chunks in enumerate(streams):
        assert isinstance(effect, OpenRead)
        assert effect.request.read_offset == (0 if attempt == 0 else 4096)
        if attempt == 1:  # the object first seen, exactly
            assert effect.request.preconditions.if_generation_match == 9
        reader = FakeReader(info, effect.request.read_offset, effect.digest)
        effect = flow.send(OpenedRead(reader, reader.chunks(chunks)))
        while isinstance(effect, ReadChunkInto):  # each chunk to the temporary file
            received = read_into(effect)
            if received is None:
                # The first stream breaks after its chunk; the second ends.
                effect = flow.throw(Unavailable("reset")) if attempt == 0 else flow.send(None)
                break
            effect = flow.send(received)
        assert reader.closed
        if attempt == 0:
            assert effect == Sleep(0.5)
            effect = flow.send(None)

    assert isinstance(effect, Blocking)  # the commit: flush, fsync, rename
    assert not dest.exists()
    assert finish(flow, effect.work()) == info
    assert dest.read_bytes() == DATA


def _read_all(chunks: list[bytes], broken: bool = False) -> tuple[object, FakeReader]:
    """Play the transport for read_all: open, then each chunk, then the end
    (or an error where the stream breaks)."""
    request = pb.GetRequest(bucket="b", key="k")
    flow = _flows.read_all(request, "k")
    opening = start(flow)
    assert opening == OpenRead(request, "k")
    reader = FakeReader(stored(b"".join(chunks)))
    effect = flow.send(OpenedRead(reader, iter(chunks)))
    for chunk in chunks:
        assert isinstance(effect, ReadChunk)
        assert next(effect.chunks) == chunk
        effect = flow.send(chunk)
    assert isinstance(effect, ReadChunk)
    if broken:
        with pytest.raises(Unavailable):
            flow.throw(Unavailable("reset"))
        return None, reader
    return finish(flow, None), reader


def test_get_bytes_joins_the_verified_chunks_and_closes_the_reader() -> None:
    data, reader = _read_all([DATA[:4096], DATA[4096:]])
    assert data == DATA
    assert reader.closed


def test_get_bytes_closes_the_reader_when_the_stream_breaks() -> None:
    _, reader = _read_all([DATA[:4096]], broken=True)
    assert reader.closed


def test_listings_give_each_page_whole_or_its_objects() -> None:
    response = pb.ListResponse(
        objects=[pb.ObjectInfo(bucket="b", key="a"), pb.ObjectInfo(bucket="b", key="b")],
        common_prefixes=["p/"],
    )

    def first_page() -> Flow[object]:
        return next(_flows.list_pages(pb.ListRequest(bucket="b"), None))

    pages = _flows.alone(first_page())
    assert isinstance(start(pages), Call)
    (page,) = finish(pages, response)
    assert page.prefixes == ("p/",)
    assert [info.key for info in page.objects] == ["a", "b"]

    objects = _flows.objects(first_page())
    assert isinstance(start(objects), Call)
    assert [info.key for info in finish(objects, response)] == ["a", "b"]
