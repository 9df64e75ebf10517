"""Tenant isolation end to end: a real gateway with API keys and a policy
that confines each tenant to tenants/{principal}/, on the local backend and
on S3 (moto, and Ceph RGW where installed). Tenant A tries every RPC on what
tenant B holds and is refused with ACCESS_DENIED, before any backend call
(a missing key is refused the same way as an existing one); B's objects and
uploads are untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from tests.access_e2e.tenants import OPS, A, B, Session, policy_gateway, refusal, segment
from tests.conftest import RunningGateway
from tests.drivers import backend_env

DENIED = ("PERMISSION_DENIED", "ACCESS_DENIED")
B_OBJECT = B.home + "payroll.csv"
B_MISSING = B.home + "never-written.csv"
A_OBJECT = A.home + "notes.txt"


@pytest.fixture(params=["local", "s3-moto", "s3-ceph"])
def tenants_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    with policy_gateway(backend_env(request, request.param), tmp_path) as running:
        running.backend_name = request.param
        yield running


@pytest.fixture
def session(tenants_gateway: RunningGateway) -> Iterator[Session]:
    with grpc.insecure_channel(tenants_gateway.target) as channel:
        yield Session(channel)


Attempt = Callable[[Session, dict[str, str]], tuple[str, str]]


def _copy(source: str, destination: str) -> Attempt:
    return lambda s, _: refusal(
        s.stub.Copy,
        pb.CopyRequest(source_key=source, destination_key=destination),
        A.metadata,
    )


def _sign(key: str, method: int) -> Attempt:
    return lambda s, _: refusal(
        s.stub.SignUrl, pb.SignUrlRequest(key=key, method=method), A.metadata
    )


# What tenant A tries on tenant B's things; uploads: B's upload ids by name
# ("home": in B's space, "shared": in shared/, where A may write too).
ATTEMPTS: dict[str, Attempt] = {
    "Head": lambda s, _: refusal(s.stub.Head, pb.HeadRequest(key=B_OBJECT), A.metadata),
    "Head of a missing key": lambda s, _: refusal(
        s.stub.Head, pb.HeadRequest(key=B_MISSING), A.metadata
    ),
    "Get": lambda s, _: refusal(s.stub.Get, pb.GetRequest(key=B_OBJECT), A.metadata),
    "Get of a missing key": lambda s, _: refusal(
        s.stub.Get, pb.GetRequest(key=B_MISSING), A.metadata
    ),
    "Delete": lambda s, _: refusal(s.stub.Delete, pb.DeleteRequest(key=B_OBJECT), A.metadata),
    "List of B's prefix": lambda s, _: refusal(
        s.stub.List, pb.ListRequest(prefix=B.home), A.metadata
    ),
    "List of tenants/": lambda s, _: refusal(
        s.stub.List, pb.ListRequest(prefix="tenants/"), A.metadata
    ),
    "List of the whole bucket": lambda s, _: refusal(s.stub.List, pb.ListRequest(), A.metadata),
    "Copy from B": _copy(B_OBJECT, A.home + "stolen.csv"),
    "Copy into B": _copy(A_OBJECT, B.home + "planted.txt"),
    "SignUrl GET": _sign(B_OBJECT, pb.SIGNED_METHOD_GET),
    "SignUrl PUT": _sign(B_OBJECT, pb.SIGNED_METHOD_PUT),
    "SignUrl POST": _sign(B_OBJECT, pb.SIGNED_METHOD_POST),
    "Put": lambda s, _: refusal(lambda request, metadata: s.put(A, B.home + "planted.txt"), None),
    "StartUpload": lambda s, _: refusal(
        s.stub.StartUpload,
        pb.StartUploadRequest(spec=pb.PutSpec(key=B.home + "planted.txt")),
        A.metadata,
    ),
}
for _where in ("home", "shared"):
    ATTEMPTS |= {
        f"Put continuing B's upload ({_where})": lambda s, ids, w=_where: refusal(
            s.stub.Put, segment(ids[w], b"hijack", finish=True), A.metadata
        ),
        f"QueryUpload of B's upload ({_where})": lambda s, ids, w=_where: refusal(
            s.stub.QueryUpload, pb.QueryUploadRequest(upload_id=ids[w]), A.metadata
        ),
        f"AbortUpload of B's upload ({_where})": lambda s, ids, w=_where: refusal(
            s.stub.AbortUpload, pb.AbortUploadRequest(upload_id=ids[w]), A.metadata
        ),
    }


def test_every_rpc_on_another_tenants_space_is_denied(
    tenants_gateway: RunningGateway, session: Session
) -> None:
    session.put(B, B_OBJECT, b"salaries")
    session.put(A, A_OBJECT, b"a's own")
    uploads = {
        "home": session.start(B, B.home + "upload.bin"),
        "shared": session.start(B, "shared/upload.bin"),
    }
    outcomes = {name: attempt(session, uploads) for name, attempt in ATTEMPTS.items()}
    assert outcomes == dict.fromkeys(ATTEMPTS, DENIED)
    # B's things are as B left them, and nothing of A's landed in B's space.
    assert session.head(B, B_OBJECT).size == len(b"salaries")
    for upload_id in uploads.values():
        assert session.query(B, upload_id).persisted_size == 0
    listing: pb.ListResponse = session.stub.List(pb.ListRequest(prefix=B.home), metadata=B.metadata)
    assert [entry.key for entry in listing.objects] == [B_OBJECT]


def test_each_tenant_works_in_its_own_space(session: Session) -> None:
    """The same calls, on A's own space, succeed: the refusals above are the policy's."""
    session.put(A, A_OBJECT, b"a's own")
    assert session.head(A, A_OBJECT).size == len(b"a's own")
    session.stub.Copy(
        pb.CopyRequest(source_key=A_OBJECT, destination_key=A.home + "copy.txt"),
        metadata=A.metadata,
    )
    listing: pb.ListResponse = session.stub.List(pb.ListRequest(prefix=A.home), metadata=A.metadata)
    assert [entry.key for entry in listing.objects] == [A.home + "copy.txt", A_OBJECT]
    signed: pb.SignUrlResponse = session.stub.SignUrl(
        pb.SignUrlRequest(key=A_OBJECT, method=pb.SIGNED_METHOD_GET), metadata=A.metadata
    )
    assert signed.url
    upload_id = session.start(A, A.home + "big.bin")
    done: pb.PutResponse = session.stub.Put(
        segment(upload_id, b"abc", finish=True), metadata=A.metadata
    )
    assert done.object.size == 3
    assert session.stub.Delete(pb.DeleteRequest(key=A_OBJECT), metadata=A.metadata).existed


def test_an_upload_belongs_to_whoever_started_it(session: Session) -> None:
    """In shared/ both tenants may write, yet only B continues B's upload;
    the operator (admin) may query and abort it."""
    upload_id = session.start(B, "shared/report.bin")
    assert (
        refusal(session.stub.Put, segment(upload_id, b"from A", finish=True), A.metadata) == DENIED
    )
    session.stub.Put(segment(upload_id, b"from B", finish=False), metadata=B.metadata)
    assert (
        session.query(OPS, upload_id).persisted_size == session.query(B, upload_id).persisted_size
    )
    assert session.stub.AbortUpload(
        pb.AbortUploadRequest(upload_id=upload_id), metadata=OPS.metadata
    ).existed
    # A's own upload in shared/ is A's to continue.
    own = session.start(A, "shared/mine.bin")
    finished: pb.PutResponse = session.stub.Put(
        segment(own, b"from A", finish=True), metadata=A.metadata
    )
    assert finished.object.key == "shared/mine.bin"
