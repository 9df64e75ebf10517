"""A rescan is an administrative call: the policy's admin grant decides who
may run it, object by object, on a real gateway with API keys and a real clamd."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from tests.access_e2e.tenants import OPS, A, Session, policy_gateway
from tests.clamd_server import ClamdServer
from tests.rpc_calls import error_reason
from tests.scanning.scan_gateways import config_text


def test_a_rescan_needs_the_admin_grant(clamd: ClamdServer, tmp_path: Path) -> None:
    config = tmp_path / "buckets.toml"
    config.write_text(config_text(clamd.tcp_address))
    env = {"GATEWAY_CONFIG": str(config), "STORAGE_URL_SECRET": "rescan-access-secret"}
    with policy_gateway(env, tmp_path) as running, grpc.insecure_channel(running.target) as chan:
        session = Session(chan)
        session.put(A, "tenants/tenant-a/notes.txt", b"plain words\n")
        request = pb.ScanObjectsRequest(bucket="files", prefix="tenants/tenant-a/")
        # tenant-a may list and write its space, but not administer it.
        with pytest.raises(grpc.RpcError) as denied:
            session.stub.ScanObjects(request, metadata=A.metadata)
        assert error_reason(denied.value)[1] == "ACCESS_DENIED"
        report: pb.ScanObjectsResponse = session.stub.ScanObjects(request, metadata=OPS.metadata)
        assert (report.scanned, report.clean, list(report.infected)) == (1, 1, [])
