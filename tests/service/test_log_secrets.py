"""Secrets and credentials never reach the gateway's log, at any level."""

from __future__ import annotations

import grpc

from gateway.logs import redact
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import backend_env, gateway_process
from tests.rpc_calls import get, put

# Moto checks no signatures, so these stand out in the log if printed.
ACCESS_KEY = "AKIDPROBE7Q2W4E6R8T"
SECRET_KEY = "probe-secret-9Z8Y7X6W5V4U"


def test_debug_log_of_an_s3_gateway_holds_no_credentials(request, tmp_path):
    env = {
        **backend_env(request, "s3-moto"),
        "STORAGE_S3_ACCESS_KEY": ACCESS_KEY,
        "STORAGE_S3_SECRET_KEY": SECRET_KEY,
        "GATEWAY_LOG_LEVEL": "DEBUG",
    }
    with (
        gateway_process(tmp_path, **env) as gateway,
        grpc.insecure_channel(gateway.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        put(stub, "k", b"payload")
        assert get(stub, "k")[1] == b"payload"
        stub.List(pb.ListRequest())
        stub.SignUrl(pb.SignUrlRequest(key="k", method=pb.SIGNED_METHOD_GET))
    # Read once the process has exited and its stderr is drained.
    log = "".join(gateway.log_lines)
    assert '"level": "debug"' in log  # DEBUG was on
    assert '"rpc_method": "Put"' in log
    for secret in (ACCESS_KEY, SECRET_KEY, "Signature=", "Authorization"):
        assert secret not in log


def test_redaction_masks_headers_and_signed_query_strings():
    text = (
        "{'Authorization': 'AWS4-HMAC-SHA256 Credential=AKIDX/2026/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=0a1b'} "
        "GET /b/k?X-Amz-Signature=ffee&X-Amz-Credential=AKIDY%2F2026&X-Sgw-Signature=99 "
        "x-amz-security-token: TOKEN123"
    )
    cleaned = redact(text)
    for secret in ("AKIDX", "0a1b", "ffee", "AKIDY", "=99", "TOKEN123"):
        assert secret not in cleaned
    assert redact("Put default/k 12B OK") == "Put default/k 12B OK"
