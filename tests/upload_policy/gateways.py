"""What the upload policy's gateway-level tests share: gateways whose buckets
have policies (on the drivers of tests/drivers.py), and the checks of a
refusal."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.backends import registry
from gateway.domain.objects import Checksums, WriteOptions
from storagegw import Client, StorageError
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway
from tests.drivers import backend_env
from tests.rpc_calls import crc
from tests.upload_policy.file_headers import DENIED, Sample

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


def chunked(spec: pb.PutSpec, data: bytes, sizes: list[int]) -> Iterator[pb.PutRequest]:
    """A Put stream of data in chunks of sizes (the last takes the rest), each
    with its CRC32C."""
    yield pb.PutRequest(spec=spec)
    offset = 0
    for size in [*sizes, len(data)]:
        piece = data[offset : offset + size]
        chunk = pb.ChecksummedData(content=piece, crc32c=crc(piece))
        yield pb.PutRequest(write_offset=offset, chunk=chunk)
        offset += len(piece)
    yield pb.PutRequest(finish_write=True, object_checksums=pb.ObjectChecksums(crc32c=crc(data)))


def plant(running: RunningGateway, bucket: str, key: str, data: bytes, content_type: str) -> None:
    """An object stored before its bucket had a policy: written by the driver."""

    async def write() -> None:
        writer = await running.backend(bucket).open_write(key, WriteOptions(content_type))
        await writer.write(data)
        await writer.commit(Checksums(crc(data), None, len(data)))

    running.run(write())
