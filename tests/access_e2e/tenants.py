"""Two tenants, an operator and a policy confining each tenant to its own
prefix, for the end-to-end access tests: API keys (no TLS needed), a real
gateway, raw stubs carrying "authorization: Bearer <key>"."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from gateway.access.api_keys import hash_key
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway, run_gateway
from tests.rpc_calls import crc, error_reason, put_messages

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Caller:
    name: str
    key: str

    @property
    def metadata(self) -> Metadata:
        return (("authorization", f"Bearer {self.key}"),)

    @property
    def home(self) -> str:
        return f"tenants/{self.name}/"


A = Caller("tenant-a", "sgw_test-key-of-tenant-a-0123456789")
B = Caller("tenant-b", "sgw_test-key-of-tenant-b-9876543210")
OPS = Caller("ops", "sgw_test-key-of-the-operator-42")
CALLERS = (A, B, OPS)

# Each tenant does everything in its own space, and writes in shared/; the
# operator may also act on anyone's resumable uploads (admin).
GRANTS = """
[[grants]]
principals = ["*"]
actions = ["read", "write", "delete", "list", "sign"]
buckets = ["*"]
prefixes = ["tenants/{principal}/"]

[[grants]]
principals = ["tenant-a", "tenant-b"]
actions = ["read", "write", "list"]
buckets = ["*"]
prefixes = ["shared/"]

[[grants]]
principals = ["ops"]
actions = ["admin", "read", "list"]
buckets = ["*"]
"""

# Anyone may do anything anywhere: the policy of a second gateway that mints
# URLs the first one's policy would never have let be signed.
LAX_GRANTS = """
[[grants]]
principals = ["*"]
actions = ["read", "write", "delete", "list", "sign", "admin"]
buckets = ["*"]
"""


def api_keys_toml(callers: tuple[Caller, ...] = CALLERS) -> str:
    return "".join(
        f'[[api_keys]]\nprincipal = "{c.name}"\nsha256 = "{hash_key(c.key)}"\n\n' for c in callers
    )


def write_policy(directory: Path, grants: str = GRANTS, name: str = "policy.toml") -> Path:
    path = directory / name
    path.write_text(api_keys_toml() + grants)
    return path


@contextmanager
def policy_gateway(
    env: dict[str, str], data_dir: Path, grants: str = GRANTS
) -> Iterator[RunningGateway]:
    """A gateway on env's backend with the tenants' policy (its API keys included)."""
    policy = write_policy(data_dir, grants, f"policy-{abs(hash(grants))}.toml")
    with run_gateway({**env, "GATEWAY_POLICY": str(policy)}, data_dir) as running:
        yield running


class Session:
    """Raw calls on one gateway, each as a given caller."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = storage_pb2_grpc.StorageServiceStub(channel)

    def put(self, caller: Caller, key: str, data: bytes = b"data") -> pb.ObjectInfo:
        response: pb.PutResponse = self.stub.Put(put_messages(key, data), metadata=caller.metadata)
        return response.object

    def start(self, caller: Caller, key: str) -> str:
        response: pb.StartUploadResponse = self.stub.StartUpload(
            pb.StartUploadRequest(spec=pb.PutSpec(key=key)), metadata=caller.metadata
        )
        return response.upload_id

    def query(self, caller: Caller, upload_id: str) -> pb.QueryUploadResponse:
        response: pb.QueryUploadResponse = self.stub.QueryUpload(
            pb.QueryUploadRequest(upload_id=upload_id), metadata=caller.metadata
        )
        return response

    def head(self, caller: Caller, key: str) -> pb.ObjectInfo:
        response: pb.HeadResponse = self.stub.Head(
            pb.HeadRequest(key=key), metadata=caller.metadata
        )
        return response.object


def segment(upload_id: str, data: bytes, *, finish: bool) -> Iterator[pb.PutRequest]:
    """A Put stream continuing an upload from offset 0."""
    yield pb.PutRequest(upload_id=upload_id, write_offset=0)
    yield pb.PutRequest(chunk=pb.ChecksummedData(content=data, crc32c=crc(data)))
    if finish:
        yield pb.PutRequest(finish_write=True)


def refusal(call: Any, request: Any, metadata: Metadata = ()) -> tuple[str, str]:
    """(status name, ErrorInfo reason) of a call expected to fail."""
    try:
        result = call(request, metadata=metadata)
        if isinstance(result, Iterator):
            list(result)
    except grpc.RpcError as error:
        code, reason = error_reason(error)
        return code.name, reason
    return "OK", ""
