"""The bucket's upload policy over gRPC, on real gateways (local and memory
buckets): Put, resumable uploads (the client's put_file, and raw StartUpload
and Put streams) and Copy within and across backends, with the corpus of
real file headers (tests/file_headers.py) declared truthfully and falsely.
A refusal leaves nothing under the key."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.backends import registry
from storagegw import Client, StorageError
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway, run_gateway
from tests.drivers import backend_env
from tests.file_headers import BY_NAME, CORPUS, DENIED, Sample
from tests.rpc_calls import call_error, crc

SECRET = "upload-policy-test-secret"
KiB = 1024
# The drivers whose buckets these gateways are on (tests/drivers.py); the
# `free` bucket (no policy) is on the other one, for copies across backends.
DRIVERS = {"local": "memory", "memory": "local", "s3-moto": "memory"}
# Those whose signed URLs the gateway serves itself.
GATEWAY_SIGNED = ("local", "memory")
TRUTHFUL_ALLOWED = ("png", "jpeg", "pdf", "zip", "text")
Stub = storage_pb2_grpc.StorageServiceStub


def bucket_table(request: pytest.FixtureRequest, driver: str, name: str) -> str:
    """A [buckets.NAME] table on driver (tests/drivers.py), in a store of its
    own (under a prefix of its name where the store is shared)."""
    env = backend_env(request, driver)
    kind = env["STORAGE_BACKEND"]
    spec = registry.spec_of(kind)
    assert spec is not None
    fields = {field: env[var] for field, var in spec.env_names.items() if var in env}
    if "prefix" in spec.fields:
        fields["prefix"] = f"{name}/"
    lines = [f"[buckets.{name}]", f'backend = "{kind}"']
    lines += [f"{field} = {json.dumps(value)}" for field, value in fields.items()]
    return "\n".join(lines) + "\n"


def policy_config(request: pytest.FixtureRequest, driver: str, other: str) -> str:
    denied = ", ".join(f"'{t}'" for t in DENIED)
    return f"""
default_bucket = "typed"

{bucket_table(request, driver, "typed")}
[buckets.typed.upload_policy]
require_type_match = true
denied_types = [{denied}]

{bucket_table(request, driver, "images")}
[buckets.images.upload_policy]
allowed_types = ["image/*"]

{bucket_table(request, driver, "sized")}
[buckets.sized.upload_policy]
min_size = "1KiB"
max_size = "64KiB"
allowed_suffixes = [".bin", ".txt"]
required_metadata = ["owner"]

{bucket_table(request, other, "free")}
"""


@pytest.fixture(params=list(DRIVERS))
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    config = tmp_path / "buckets.toml"
    config.write_text(policy_config(request, request.param, DRIVERS[request.param]))
    env = {"GATEWAY_CONFIG": str(config), "STORAGE_URL_SECRET": SECRET}
    with run_gateway(env, tmp_path / "data") as gateway:
        gateway.backend_name = request.param
        yield gateway


@pytest.fixture
def client(running: RunningGateway) -> Iterator[Client]:
    with Client(running.target, timeout=30) as client:
        yield client


@pytest.fixture
def stub(running: RunningGateway) -> Iterator[Stub]:
    with grpc.insecure_channel(running.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


def refused(call: object, *args: object, **kwargs: object) -> StorageError:
    with pytest.raises(StorageError) as raised:
        call(*args, **kwargs)  # type: ignore[operator]
    return raised.value


def assert_absent(client: Client, key: str, bucket: str = "typed") -> None:
    error = refused(client.head, key, bucket=bucket)
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")


def assert_refused(
    error: StorageError, reason: str, metadata: dict[str, str], code: grpc.StatusCode
) -> None:
    assert (error.code, error.reason) == (code, reason), error.message
    assert {k: error.metadata.get(k) for k in metadata} == metadata


def mismatch(sample: Sample, declared: str, bucket: str = "typed") -> dict[str, str]:
    return {"sniffed": sample.sniffed, "declared": declared, "bucket": bucket}


# ------------------------------------------------------------------------- Put


@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: s.name)
def test_put_lets_in_what_is_declared_truly_and_allowed(client: Client, sample: Sample) -> None:
    key = f"true{sample.suffix}"
    if sample.name in TRUTHFUL_ALLOWED:
        info = client.put_bytes(key, sample.data, content_type=sample.declared)
        assert info.size == len(sample.data)
        assert client.get_bytes(key) == sample.data
        return
    # Denied by what it declares: refused before a byte is read.
    error = refused(client.put_bytes, key, sample.data, content_type=sample.declared)
    expected = {"declared": sample.declared, "bucket": "typed"}
    assert_refused(error, "TYPE_NOT_ALLOWED", expected, grpc.StatusCode.INVALID_ARGUMENT)
    assert "sniffed" not in error.metadata
    assert_absent(client, key)


@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: s.name)
def test_put_refuses_a_false_declaration(client: Client, sample: Sample) -> None:
    key = f"false{sample.suffix}"
    error = refused(client.put_bytes, key, sample.data, content_type=sample.false)
    expected = mismatch(sample, sample.false)
    assert_refused(error, "TYPE_MISMATCH", expected, grpc.StatusCode.INVALID_ARGUMENT)
    assert_absent(client, key)


@pytest.mark.parametrize("name", ["elf", "shell", "html"])
def test_put_declaring_nothing_is_judged_by_its_bytes(client: Client, name: str) -> None:
    sample = BY_NAME[name]
    error = refused(client.put_bytes, "undeclared", sample.data)
    expected = mismatch(sample, "application/octet-stream")
    assert_refused(error, "TYPE_NOT_ALLOWED", expected, grpc.StatusCode.INVALID_ARGUMENT)
    assert_absent(client, "undeclared")
    # What is not denied goes in undeclared: the sniff finds nothing wrong.
    client.put_bytes("undeclared", BY_NAME["pdf"].data)
    assert client.get_bytes("undeclared") == BY_NAME["pdf"].data


def test_allowed_types_judge_the_sniffed_type(client: Client) -> None:
    for sample in CORPUS:
        key = f"{sample.name}{sample.suffix}"
        if sample.sniffed.startswith("image/"):
            client.put_bytes(key, sample.data, bucket="images")
            continue
        error = refused(client.put_bytes, key, sample.data, bucket="images")
        expected = mismatch(sample, "application/octet-stream", "images")
        assert_refused(error, "TYPE_NOT_ALLOWED", expected, grpc.StatusCode.INVALID_ARGUMENT)
        assert_absent(client, key, "images")
    # A PNG declared a PDF is refused before its bytes are read: not an image.
    error = refused(client.put_bytes, "a.png", BY_NAME["png"].data, bucket="images",
                    content_type="application/pdf")  # fmt: skip
    assert error.reason == "TYPE_NOT_ALLOWED"
    assert error.metadata["declared"] == "application/pdf"


def test_size_suffix_and_metadata_rules(client: Client) -> None:
    owner = {"owner": "ops"}
    data = os.urandom(4 * KiB)
    put = client.put_bytes
    error = refused(put, "a.exe", data, bucket="sized", metadata=owner)
    expected = {"key": "a.exe", "allowed": ".bin, .txt"}
    assert_refused(error, "KEY_SUFFIX_NOT_ALLOWED", expected, grpc.StatusCode.INVALID_ARGUMENT)
    error = refused(put, "a.bin", data, bucket="sized", metadata={"team": "x"})
    expected = {"missing": "owner"}
    assert_refused(error, "METADATA_REQUIRED", expected, grpc.StatusCode.INVALID_ARGUMENT)
    error = refused(put, "a.bin", data[:100], bucket="sized", metadata=owner)
    expected = {"min_size": "1024", "size": "100"}
    assert_refused(error, "OBJECT_TOO_SMALL", expected, grpc.StatusCode.OUT_OF_RANGE)
    big = os.urandom(64 * KiB + 1)
    error = refused(put, "a.bin", big, bucket="sized", metadata=owner)
    assert_refused(error, "OBJECT_TOO_LARGE", {}, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert_absent(client, "a.bin", "sized")
    assert_absent(client, "a.exe", "sized")
    assert put("A.BIN", data, bucket="sized", metadata=owner).size == len(data)


def test_an_undeclared_size_is_bounded_as_bytes_arrive(client: Client, tmp_path: Path) -> None:
    """A stream that declares no size: the maximum is held as bytes come,
    the minimum at the end, before the commit."""
    owner = {"owner": "ops"}
    chunks = [os.urandom(16 * KiB) for _ in range(5)]
    error = refused(client.put_file, "s.bin", iter(chunks), bucket="sized", metadata=owner)
    assert error.reason == "OBJECT_TOO_LARGE"
    error = refused(client.put_file, "s.bin", iter([b"x" * 10]), bucket="sized", metadata=owner)
    assert (error.reason, error.metadata["size"]) == ("OBJECT_TOO_SMALL", "10")
    assert_absent(client, "s.bin", "sized")


# ------------------------------------------------------------ resumable uploads


@pytest.mark.parametrize("name", ["png", "elf", "html"])
def test_put_file_resumable(client: Client, tmp_path: Path, name: str) -> None:
    sample = BY_NAME[name]
    path = tmp_path / f"file{sample.suffix}"
    path.write_bytes(sample.padded(300 * KiB))
    sessions: list[str] = []
    if name == "png":
        client.put_file("up.png", path, resumable=True, content_type=sample.declared)
        assert client.get_bytes("up.png") == path.read_bytes()
    error = refused(
        client.put_file,
        "up.png",
        path,
        resumable=True,
        content_type=sample.false,
        keep_upload=True,
        on_upload_start=lambda session: sessions.append(session.upload_id),
    )
    expected = mismatch(sample, sample.false)
    assert_refused(error, "TYPE_MISMATCH", expected, grpc.StatusCode.INVALID_ARGUMENT)
    # The gateway aborted the upload (the client was told to keep it).
    (upload_id,) = sessions
    gone = refused(client.query_upload, upload_id)
    assert gone.reason == "UPLOAD_NOT_FOUND"
    if name != "png":
        assert_absent(client, "up.png")
    else:
        assert client.get_bytes("up.png") == path.read_bytes()  # the first is untouched


def start(stub: Stub, key: str, content_type: str, bucket: str = "typed") -> str:
    spec = pb.PutSpec(bucket=bucket, key=key, content_type=content_type)
    response: pb.StartUploadResponse = stub.StartUpload(pb.StartUploadRequest(spec=spec))
    return response.upload_id


def segment(upload_id: str, data: bytes, offset: int, *, finish: bool) -> Iterator[pb.PutRequest]:
    yield pb.PutRequest(upload_id=upload_id, write_offset=offset)
    for begin in range(offset, len(data), 64 * KiB):
        piece = data[begin : begin + 64 * KiB]
        chunk = pb.ChecksummedData(content=piece, crc32c=crc(piece))
        yield pb.PutRequest(write_offset=begin, chunk=chunk)
    if finish:
        yield pb.PutRequest(finish_write=True)


def error_info(call: object, *args: object) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    try:
        call(*args)  # type: ignore[operator]
    except grpc.RpcError as error:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        assert status is not None
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return error.code(), info.reason, dict(info.metadata)  # type: ignore[attr-defined]
    raise AssertionError("the call succeeded but an error was expected")


def test_a_first_segment_shorter_than_the_window_persists_nothing(stub: Stub) -> None:
    """The first bytes are sniffed before any is written: a stream that stops
    before the sniff window is full persists none of them, and the stream that
    sends them again (from 0) is the one checked."""
    elf = BY_NAME["elf"].padded(256 * KiB)
    upload_id = start(stub, "raw.png", "image/png")
    response: pb.PutResponse = stub.Put(segment(upload_id, elf[:100], 0, finish=False))
    assert response.persisted_size == 0
    assert not response.HasField("object")
    query = pb.QueryUploadRequest(upload_id=upload_id)
    assert stub.QueryUpload(query).persisted_size == 0
    code, reason, metadata = error_info(stub.Put, segment(upload_id, elf, 0, finish=True))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "TYPE_MISMATCH")
    assert metadata == {
        "sniffed": "application/x-executable",
        "declared": "image/png",
        "bucket": "typed",
    }
    # Refused: aborted, not left to resume.
    assert call_error(stub.QueryUpload, query)[1] == "UPLOAD_NOT_FOUND"
    assert call_error(stub.Head, pb.HeadRequest(key="raw.png"))[1] == "OBJECT_NOT_FOUND"


def test_an_allowed_upload_lands_over_several_segments(stub: Stub) -> None:
    png = BY_NAME["png"].padded(200 * KiB)
    upload_id = start(stub, "raw.png", "image/png")
    stub.Put(segment(upload_id, png[:50], 0, finish=False))
    response: pb.PutResponse = stub.Put(segment(upload_id, png[: 100 * KiB], 0, finish=False))
    persisted = response.persisted_size
    assert 0 <= persisted <= 100 * KiB
    done: pb.PutResponse = stub.Put(segment(upload_id, png, persisted, finish=True))
    assert done.object.size == len(png)
    chunks = stub.Get(pb.GetRequest(key="raw.png"))
    assert b"".join(r.chunk.content for r in chunks) == png


def test_start_upload_refuses_what_the_request_shows(stub: Stub) -> None:
    code, reason, metadata = error_info(
        stub.StartUpload,
        pb.StartUploadRequest(spec=pb.PutSpec(bucket="sized", key="u.exe")),
    )
    assert (code, reason, metadata) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "KEY_SUFFIX_NOT_ALLOWED",
        {"key": "u.exe", "allowed": ".bin, .txt"},
    )
    spec = pb.PutSpec(key="u.html", content_type="text/html")
    _, reason, _ = error_info(stub.StartUpload, pb.StartUploadRequest(spec=spec))
    assert reason == "TYPE_NOT_ALLOWED"


def test_a_resumable_upload_under_the_minimum_is_aborted(stub: Stub) -> None:
    spec = pb.PutSpec(bucket="sized", key="small.txt", metadata={"owner": "ops"})
    upload_id = stub.StartUpload(pb.StartUploadRequest(spec=spec)).upload_id
    code, reason, metadata = error_info(stub.Put, segment(upload_id, b"x" * 100, 0, finish=True))
    assert (code, reason, metadata) == (
        grpc.StatusCode.OUT_OF_RANGE,
        "OBJECT_TOO_SMALL",
        {"min_size": "1024", "size": "100"},
    )
    query = pb.QueryUploadRequest(upload_id=upload_id)
    assert call_error(stub.QueryUpload, query)[1] == "UPLOAD_NOT_FOUND"
    head = pb.HeadRequest(bucket="sized", key="small.txt")
    assert call_error(stub.Head, head)[1] == "OBJECT_NOT_FOUND"


# ------------------------------------------------------------------------- Copy


def plant(running: RunningGateway, bucket: str, key: str, data: bytes, content_type: str) -> None:
    """An object stored before its bucket had a policy: written by the driver."""
    from gateway.domain.objects import Checksums, WriteOptions

    async def write() -> None:
        writer = await running.backend(bucket).open_write(key, WriteOptions(content_type))
        await writer.write(data)
        await writer.commit(Checksums(crc(data), None, len(data)))

    running.run(write())


@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: s.name)
def test_copy_within_a_backend_reads_the_source_head_first(
    running: RunningGateway, client: Client, sample: Sample
) -> None:
    plant(running, "typed", "source", sample.padded(100 * KiB), sample.false)
    key = f"copy{sample.suffix}"
    error = refused(client.copy, "source", key)
    expected = mismatch(sample, sample.false)
    assert_refused(error, "TYPE_MISMATCH", expected, grpc.StatusCode.INVALID_ARGUMENT)
    assert_absent(client, key)
    if sample.name in TRUTHFUL_ALLOWED:
        info = client.copy("source", key, content_type=sample.declared)
        assert info.content_type == sample.declared
        assert client.get_bytes(key) == client.get_bytes("source")
    else:
        error = refused(client.copy, "source", key, content_type=sample.declared)
        assert error.reason == "TYPE_NOT_ALLOWED"
        assert_absent(client, key)


@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: s.name)
def test_copy_across_backends_streams_through_the_policy(client: Client, sample: Sample) -> None:
    data = sample.padded(300 * KiB)
    client.put_bytes("source", data, bucket="free", content_type=sample.false)
    key = f"across{sample.suffix}"
    error = refused(client.copy, "source", key, src_bucket="free", dst_bucket="typed")
    expected = mismatch(sample, sample.false)
    assert_refused(error, "TYPE_MISMATCH", expected, grpc.StatusCode.INVALID_ARGUMENT)
    assert_absent(client, key)
    copy = client.copy
    if sample.name in TRUTHFUL_ALLOWED:
        copy("source", key, src_bucket="free", dst_bucket="typed", content_type=sample.declared)
        assert client.get_bytes(key) == data
    else:
        error = refused(copy, "source", key, src_bucket="free", content_type=sample.declared)
        assert error.reason == "TYPE_NOT_ALLOWED"
        assert_absent(client, key)


# --------------------------------------------------------------- the README's


def test_the_readme_policy_does_what_it_says(tmp_path: Path) -> None:
    """The README's upload policy example, as a gateway's configuration."""
    from tests.project.test_readme import BLOCKS

    (block,) = [b for b in BLOCKS if "[buckets.images.upload_policy]" in b.text]
    config = tmp_path / "buckets.toml"
    config.write_text(block.text)
    env = {"GATEWAY_CONFIG": str(config)}
    with run_gateway(env, tmp_path / "data") as gateway, Client(gateway.target) as client:
        png = BY_NAME["png"].padded(2 * KiB)
        owner = {"owner": "ops"}
        client.put_bytes("cat.png", png, bucket="images", metadata=owner)
        assert client.get_bytes("cat.png", bucket="images") == png
        elf = BY_NAME["elf"].padded(2 * KiB)
        put = client.put_bytes
        error = refused(put, "cat2.png", elf, bucket="images", metadata=owner,
                        content_type="image/png")  # fmt: skip
        assert (error.reason, error.metadata["sniffed"]) == (
            "TYPE_MISMATCH",
            "application/x-executable",
        )
        error = refused(put, "cat.gif", png, bucket="images", metadata=owner)
        assert error.reason == "KEY_SUFFIX_NOT_ALLOWED"
        error = refused(put, "cat3.png", png, bucket="images")
        assert error.reason == "METADATA_REQUIRED"
        error = refused(put, "cat4.png", png[:100], bucket="images", metadata=owner)
        assert error.reason == "OBJECT_TOO_SMALL"
        assert_absent(client, "cat2.png", "images")


def test_a_policy_set_while_an_upload_is_under_way_judges_its_first_bytes(
    tmp_path: Path,
) -> None:
    """The declared type is in the upload's record whatever the policy: a
    gateway with a policy that continues an upload started without one
    sniffs its first bytes against it."""
    config = tmp_path / "buckets.toml"
    config.write_text('[buckets.typed]\nbackend = "local"\n')
    env = {"GATEWAY_CONFIG": str(config), "STORAGE_URL_SECRET": SECRET}
    with (
        run_gateway(env, tmp_path / "data") as before,
        grpc.insecure_channel(before.target) as channel,
    ):
        upload_id = start(storage_pb2_grpc.StorageServiceStub(channel), "late.png", "image/png")
    config.write_text(
        '[buckets.typed]\nbackend = "local"\n'
        "[buckets.typed.upload_policy]\nrequire_type_match = true\n"
    )
    elf = BY_NAME["elf"].padded(8 * KiB)
    with (
        run_gateway(env, tmp_path / "data") as after,
        grpc.insecure_channel(after.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        _, reason, metadata = error_info(stub.Put, segment(upload_id, elf, 0, finish=True))
        assert (reason, metadata["declared"]) == ("TYPE_MISMATCH", "image/png")
        query = pb.QueryUploadRequest(upload_id=upload_id)
        assert call_error(stub.QueryUpload, query)[1] == "UPLOAD_NOT_FOUND"
