"""Who calls, on a real gateway with API keys: refusals by reason, health
and reflection without credentials, grpcurl with a bearer header, and the
audit and access log lines (with no key material)."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.access.api_keys import hash_key
from storagegw.v1 import storage_pb2 as pb
from tests.access_e2e.tenants import A, B, Session, policy_gateway, refusal, write_policy
from tests.conftest import RunningGateway, gateway_process
from tests.log_records import AccessLog, LogRecords
from tests.service.test_tooling import GRPCURL

SERVICE = "storagegw.v1.StorageService"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RunningGateway]:
    with policy_gateway({"STORAGE_BACKEND": "memory"}, tmp_path) as running:
        yield running


@pytest.fixture
def session(guarded: RunningGateway) -> Iterator[Session]:
    with grpc.insecure_channel(guarded.target) as channel:
        yield Session(channel)


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "CREDENTIALS_MISSING"),
        ((("authorization", "Bearer sgw_not-a-key-anyone-holds"),), "CREDENTIALS_INVALID"),
        ((("authorization", f"Basic {A.key}"),), "CREDENTIALS_INVALID"),
        ((("authorization", "Bearer "),), "CREDENTIALS_INVALID"),
        (
            (("authorization", f"Bearer {A.key}"), ("authorization", f"Bearer {B.key}")),
            "CREDENTIALS_INVALID",
        ),
    ],
    ids=["none", "unknown key", "not bearer", "empty bearer", "two values"],
)
def test_a_call_without_valid_credentials_is_unauthenticated(
    session: Session, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    head = refusal(session.stub.Head, pb.HeadRequest(key=A.home + "x"), metadata)
    get = refusal(session.stub.Get, pb.GetRequest(key=A.home + "x"), metadata)
    assert head == get == ("UNAUTHENTICATED", reason)


def test_a_denied_head_of_a_missing_key_does_not_say_it_is_missing(session: Session) -> None:
    assert refusal(session.stub.Head, pb.HeadRequest(key=B.home + "nothing"), A.metadata) == (
        "PERMISSION_DENIED",
        "ACCESS_DENIED",
    )
    # The owner is told it is missing.
    assert refusal(session.stub.Head, pb.HeadRequest(key=B.home + "nothing"), B.metadata) == (
        "NOT_FOUND",
        "OBJECT_NOT_FOUND",
    )


def test_health_needs_no_credentials(guarded: RunningGateway) -> None:
    with grpc.insecure_channel(guarded.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE)
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _grpcurl(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GRPCURL, "-plaintext", *args[:-1], target, args[-1]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_grpcurl_with_a_bearer_header(guarded: RunningGateway, session: Session) -> None:
    session.put(A, A.home + "hello.txt", b"hello")
    head = ["-d", f'{{"key": "{A.home}hello.txt"}}', f"{SERVICE}/Head"]
    allowed = _grpcurl(guarded.target, "-H", f"authorization: Bearer {A.key}", *head)
    assert allowed.returncode == 0, allowed.stderr
    assert '"size": "5"' in allowed.stdout
    refused = _grpcurl(guarded.target, *head)
    assert refused.returncode != 0
    assert "Unauthenticated" in refused.stderr
    assert "CREDENTIALS_MISSING" in refused.stderr
    # Reflection and health need no credentials either.
    listed = _grpcurl(guarded.target, "list")
    assert listed.returncode == 0, listed.stderr
    assert SERVICE in listed.stdout


def test_reflection_can_be_turned_off(tmp_path: Path) -> None:
    env = {"STORAGE_BACKEND": "memory", "GATEWAY_REFLECTION": "off"}
    with policy_gateway(env, tmp_path) as running:
        listed = _grpcurl(running.target, "list")
    assert listed.returncode != 0
    assert "reflection" in listed.stderr.lower()


FIELDS = ("principal", "method", "action", "bucket", "key", "outcome", "reason", "peer")


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {name: getattr(record, name, None) for name in FIELDS}


def test_audit_lines_for_a_mutating_call_and_for_refusals(
    session: Session, audit_log: LogRecords, access_log: AccessLog
) -> None:
    session.put(A, A.home + "audited.txt")
    put = _fields(audit_log.wait(lambda r: getattr(r, "method", "") == "Put"))
    peer = put.pop("peer")
    assert put == {
        "principal": "tenant-a",
        "method": "Put",
        "action": "write",
        "bucket": "default",
        "key": A.home + "audited.txt",
        "outcome": "OK",
        "reason": "",
    }
    assert isinstance(peer, str)
    assert "127.0.0.1" in peer
    refusal(session.stub.Delete, pb.DeleteRequest(key=B.home + "x"), A.metadata)
    denied = _fields(audit_log.wait(lambda r: getattr(r, "method", "") == "Delete"))
    assert denied | {"peer": ""} == {
        "principal": "tenant-a",
        "method": "Delete",
        "action": "delete",
        "bucket": "default",
        "key": B.home + "x",
        "outcome": "PERMISSION_DENIED",
        "reason": "ACCESS_DENIED",
        "peer": "",
    }
    refusal(session.stub.Head, pb.HeadRequest(key="k"), (("authorization", f"Bearer {A.key}x"),))
    unknown = _fields(audit_log.wait(lambda r: getattr(r, "method", "") == "Head"))
    assert (unknown["outcome"], unknown["reason"]) == ("UNAUTHENTICATED", "CREDENTIALS_INVALID")
    # A read that was allowed is not audited (only mutations and refusals
    # are); the access log, written after the audit line, names its caller.
    session.head(A, A.home + "audited.txt")
    access_log.records.clear()
    session.head(A, A.home + "audited.txt")
    assert access_log.wait("Head").principal == "tenant-a"  # type: ignore[attr-defined]
    assert [r.outcome for r in audit_log.records if r.method == "Head"] == ["UNAUTHENTICATED"]  # type: ignore[attr-defined]
    # No key material anywhere in what was logged.
    for record in [*audit_log.records, *access_log.records]:
        text = f"{record.getMessage()} {record.__dict__}"
        assert A.key not in text
        assert B.key not in text


def test_a_gateway_process_writes_json_audit_lines_without_key_material(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    with gateway_process(tmp_path, STORAGE_BACKEND="memory", GATEWAY_POLICY=str(policy)) as process:
        with grpc.insecure_channel(process.target) as channel:
            session = Session(channel)
            session.put(A, A.home + "logged.txt")
            refusal(session.stub.Get, pb.GetRequest(key=B.home + "x"), A.metadata)
        process.process.send_signal(signal.SIGTERM)
        process.process.wait(30)
    lines = [json.loads(line) for line in process.log_lines if line.startswith("{")]
    audit = [
        {name: line[name] for name in ("principal", "method", "action", "outcome", "reason")}
        for line in lines
        if line["logger"] == "storagegw.audit"
    ]
    assert audit == [
        {
            "principal": "tenant-a",
            "method": "Put",
            "action": "write",
            "outcome": "OK",
            "reason": "",
        },
        {
            "principal": "tenant-a",
            "method": "Get",
            "action": "read",
            "outcome": "PERMISSION_DENIED",
            "reason": "ACCESS_DENIED",
        },
    ]
    calls = [(line["rpc_method"], line["principal"]) for line in lines if "rpc_method" in line]
    assert calls == [("Put", "tenant-a"), ("Get", "tenant-a")]
    output = "".join(process.log_lines)
    assert A.key not in output
    assert hash_key(A.key) not in output
