"""The error reasons are the contract's ErrorReason enum, everywhere.

The proto's enum (proto/storagegw/v1/error_reason.proto) is the list; the gateway's
Reason, its one reason -> gRPC code -> HTTP status table, the README's table and the
client's reason -> exception table must all hold exactly its values, and a real call
on each front (gRPC and signed URL) must carry the reason string unchanged.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2

from gateway.domain.errors import REASON_STATUS, Reason
from gateway.rpc.status import status_code
from storagegw import errors
from storagegw.v1 import status_pb2 as wire_status
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from storagegw.v1.error_reason_pb2 import ErrorReason
from tests.conftest import REPO, RunningGateway
from tests.rpc_calls import error_reason

UNSPECIFIED = "ERROR_REASON_UNSPECIFIED"
# The reasons on the wire: the enum's names, less the default value.
WIRE_REASONS = sorted(v.name for v in ErrorReason.DESCRIPTOR.values if v.name != UNSPECIFIED)
GATEWAY_SOURCE = REPO / "gateway"


def test_unspecified_is_the_default_and_never_a_gateway_reason() -> None:
    assert ErrorReason.Name(0) == UNSPECIFIED
    assert UNSPECIFIED not in {reason.value for reason in Reason}


def test_gateway_reasons_are_the_proto_enum() -> None:
    assert sorted(reason.value for reason in Reason) == WIRE_REASONS
    # The wire string is the member's name and its value, as in the enum.
    assert all(reason.name == reason.value for reason in Reason)


def _reasons_referenced(path: Path) -> Iterator[tuple[str, int]]:
    """Every Reason.X (or errors.Reason.X) in a module, with its line."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if (isinstance(owner, ast.Name) and owner.id == "Reason") or (
            isinstance(owner, ast.Attribute) and owner.attr == "Reason"
        ):
            yield node.attr, node.lineno


def _reasons_given_as_strings(path: Path) -> Iterator[int]:
    """Lines that build a GatewayError with a literal string for its reason."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            == "GatewayError"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            yield node.lineno


def test_every_reason_the_gateway_raises_is_in_the_enum() -> None:
    referenced: dict[str, list[str]] = {}
    literal: list[str] = []
    for path in sorted(GATEWAY_SOURCE.rglob("*.py")):
        where = path.relative_to(REPO)
        for name, line in _reasons_referenced(path):
            referenced.setdefault(name, []).append(f"{where}:{line}")
        literal += [f"{where}:{line}" for line in _reasons_given_as_strings(path)]
    unknown = {name: sites for name, sites in referenced.items() if name not in WIRE_REASONS}
    assert unknown == {}
    assert literal == []  # every reason is a Reason member, so the scan above sees it
    # The scan works: the drivers' and the helpers' reasons are all found.
    assert {"OBJECT_NOT_FOUND", "UPLOAD_BUSY", "OBJECT_TOO_SMALL", "INVALID_EXPIRY"} <= set(
        referenced
    )


@pytest.mark.parametrize("name", WIRE_REASONS)
def test_every_reason_has_a_grpc_code_and_an_http_status(name: str) -> None:
    answer = REASON_STATUS[Reason(name)]
    code = grpc.StatusCode[answer.grpc_code]
    assert code is not grpc.StatusCode.OK
    assert status_code(Reason(name)) is code  # the gRPC front reads the table
    assert 300 <= answer.http_status <= 599


def test_the_table_has_no_other_rows() -> None:
    assert sorted(reason.value for reason in REASON_STATUS) == WIRE_REASONS


def test_the_proto_documents_each_value_with_the_tables_statuses() -> None:
    text = (REPO / "proto" / "storagegw" / "v1" / "error_reason.proto").read_text()
    documented = re.findall(
        r"// gRPC ([A-Z_]+); HTTP (\d{3})\.\n  ([A-Z_]+) = \d+;", text, re.MULTILINE
    )
    assert sorted(name for _, _, name in documented) == WIRE_REASONS
    for code, http, name in documented:
        answer = REASON_STATUS[Reason(name)]
        assert (code, int(http)) == (answer.grpc_code, answer.http_status), name


def _statuses_written_out(path: Path) -> Iterator[tuple[int, str, int]]:
    """(status, reason, line) of each call given a literal status and a Reason.X."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and len(node.args) >= 2:
            status, reason = node.args[0], node.args[1]
            if (
                isinstance(status, ast.Constant)
                and isinstance(status.value, int)
                and isinstance(reason, ast.Attribute)
                and isinstance(reason.value, ast.Name)
                and reason.value.id == "Reason"
            ):
                yield status.value, reason.attr, node.lineno


def test_statuses_the_http_listener_writes_out_agree_with_the_table() -> None:
    found = [
        (f"{path.relative_to(REPO)}:{line}", reason, status)
        for path in sorted((GATEWAY_SOURCE / "http").glob("*.py"))
        for status, reason, line in _statuses_written_out(path)
    ]
    assert found  # the refusals answered before any GatewayError is raised
    for where, reason, status in found:
        assert status == REASON_STATUS[Reason(reason)].http_status, where


def _readme_reason_rows() -> dict[str, tuple[str, int]]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("\n## Errors\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([A-Z_]+) \| (\d{3}) \|", section, re.MULTILINE)
    return {name: (code, int(http)) for name, code, http in rows}


def test_readme_lists_the_enum_with_the_tables_statuses() -> None:
    rows = _readme_reason_rows()
    assert sorted(rows) == WIRE_REASONS
    for name, (code, http) in rows.items():
        answer = REASON_STATUS[Reason(name)]
        assert (code, http) == (answer.grpc_code, answer.http_status), name


class _FailedCall(grpc.RpcError):
    """What a failed call raises, as far as from_rpc_error looks."""

    def __init__(self, code: grpc.StatusCode, reason: str) -> None:
        super().__init__(reason)
        self._code = code
        status = wire_status.RpcStatus(code=code.value[0], message="the message")
        detail = status.details.add()
        detail.type_url = "type.googleapis.com/google.rpc.ErrorInfo"
        detail.value = wire_status.RpcErrorInfo(
            reason=reason, domain="storagegw"
        ).SerializeToString()
        self._trailers = (("grpc-status-details-bin", status.SerializeToString()),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "the message"

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailers


@pytest.mark.parametrize("name", WIRE_REASONS)
def test_client_maps_every_reason_to_a_specific_exception(name: str) -> None:
    code = grpc.StatusCode[REASON_STATUS[Reason(name)].grpc_code]
    # UNKNOWN as the code: the class must come from the reason alone.
    by_reason = errors.from_rpc_error(_FailedCall(grpc.StatusCode.UNKNOWN, name))
    assert type(by_reason) is not errors.StorageError, name
    assert by_reason.reason == name
    # The class stands for the same gRPC code the gateway sends with the reason.
    assert type(by_reason).default_code is code
    sent = errors.from_rpc_error(_FailedCall(code, name))
    assert type(sent) is type(by_reason)
    assert sent.code is code


def test_object_too_small_has_its_own_exception() -> None:
    converted = errors.from_rpc_error(_FailedCall(grpc.StatusCode.OUT_OF_RANGE, "OBJECT_TOO_SMALL"))
    assert type(converted) is errors.ObjectTooSmall
    assert isinstance(converted, errors.InvalidArgument)


# ---------------------------------------------------------------- real round trips


@pytest.fixture
def memory_stub(memory_gateway: RunningGateway) -> Iterator[storage_pb2_grpc.StorageServiceStub]:
    with grpc.insecure_channel(memory_gateway.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


def test_grpc_round_trip_keeps_the_reason_string(
    memory_stub: storage_pb2_grpc.StorageServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        memory_stub.Head(pb.HeadRequest(key="missing/object"))
    code, reason = error_reason(raised.value)
    assert reason == "OBJECT_NOT_FOUND" == ErrorReason.Name(ErrorReason.OBJECT_NOT_FOUND)
    assert code is grpc.StatusCode[REASON_STATUS[Reason.OBJECT_NOT_FOUND].grpc_code]
    converted = errors.from_rpc_error(raised.value)
    assert type(converted) is errors.ObjectNotFound
    assert converted.reason == "OBJECT_NOT_FOUND"


def _signed(
    stub: storage_pb2_grpc.StorageServiceStub,
    key: str,
    method: pb.SignedMethod.ValueType,
    **extra: int,
) -> pb.SignUrlResponse:
    request = pb.SignUrlRequest(
        key=key, method=method, expires_in=duration_pb2.Duration(seconds=60)
    )
    for name, value in extra.items():
        setattr(request, name, value)
    response: pb.SignUrlResponse = stub.SignUrl(request)
    return response


def test_signed_url_round_trip_keeps_the_reason_string(
    memory_stub: storage_pb2_grpc.StorageServiceStub,
) -> None:
    signed = _signed(memory_stub, "missing/object", pb.SIGNED_METHOD_GET)
    response = httpx.get(signed.url, timeout=30)
    assert response.headers["X-Sgw-Reason"] == "OBJECT_NOT_FOUND"
    assert response.status_code == REASON_STATUS[Reason.OBJECT_NOT_FOUND].http_status == 404


def test_signed_post_round_trip_of_the_reason_the_client_lacked(
    memory_stub: storage_pb2_grpc.StorageServiceStub,
) -> None:
    signed = _signed(memory_stub, "forms/small.bin", pb.SIGNED_METHOD_POST, min_size=3, max_size=10)
    response = httpx.post(
        signed.url,
        data=dict(signed.form_fields),
        files={"file": ("small.bin", b"xy")},
        timeout=30,
    )
    assert response.headers["X-Sgw-Reason"] == "OBJECT_TOO_SMALL"
    assert response.status_code == REASON_STATUS[Reason.OBJECT_TOO_SMALL].http_status == 400
