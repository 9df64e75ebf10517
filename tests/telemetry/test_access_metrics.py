"""Authentication outcomes and the storage cost view's tenant, on a gateway
whose policy gives each tenant an API key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from tests.access_e2e.tenants import A, B, Session, policy_gateway, refusal
from tests.conftest import RunningGateway
from tests.telemetry.scrape import scrape_until, value

AUTHENTICATIONS = "storagegw_authentications_total"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RunningGateway]:
    env = {"STORAGE_BACKEND": "memory", "GATEWAY_METRICS_LISTEN": "127.0.0.1:0"}
    with policy_gateway(env, tmp_path) as running:
        yield running


def test_authentication_outcomes_and_the_tenant_of_stored_bytes(guarded):
    with grpc.insecure_channel(guarded.target) as channel:
        session = Session(channel)
        session.put(A, A.home + "one", b"a" * 100)
        session.put(A, A.home + "two", b"a" * 20)
        session.put(B, B.home + "one", b"b" * 7)
        head = pb.HeadRequest(key=A.home + "one")
        assert refusal(session.stub.Head, head) == ("UNAUTHENTICATED", "CREDENTIALS_MISSING")
        unknown = (("authorization", "Bearer sgw_not-a-key-anyone-holds"),)
        assert refusal(session.stub.Head, head, unknown)[1] == "CREDENTIALS_INVALID"
        # Authenticated, then refused by the policy: authentication was ok.
        assert refusal(session.stub.Head, head, B.metadata)[1] == "ACCESS_DENIED"

    samples = scrape_until(
        guarded.gateway.telemetry.metrics_port,
        lambda s: (
            value(s, AUTHENTICATIONS, outcome="ok", proof="api_key") == 4
            and value(s, AUTHENTICATIONS, outcome="CREDENTIALS_INVALID", proof="") == 1
        ),
    )
    assert value(samples, AUTHENTICATIONS, outcome="ok", proof="api_key") == 4
    assert value(samples, AUTHENTICATIONS, outcome="CREDENTIALS_MISSING", proof="") == 1
    assert value(samples, AUTHENTICATIONS, outcome="CREDENTIALS_INVALID", proof="") == 1
    # The tenant of stored bytes is the principal that stored them.
    assert value(samples, "storage_bytes_total", backend="memory", tenant="tenant-a") == 120
    assert value(samples, "storage_bytes_total", backend="memory", tenant="tenant-b") == 7
    errors = "storagegw_rpc_errors_total"
    denied = {"method": "Head", "status": "PERMISSION_DENIED", "reason": "ACCESS_DENIED"}
    assert value(samples, errors, **denied) == 1
