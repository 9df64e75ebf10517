"""The CDN's secrets (the CloudFront private key, the Bunny token key, the AWS
secret and the Bunny API key the purges send) never reach the gateway's log,
at DEBUG, through signing, purging and a purge the API refuses."""

from __future__ import annotations

from pathlib import Path

import grpc

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.cdn.cdn_gateways import BUNNY_TOKEN_KEY, gateway_env
from tests.cdn.standins import BUNNY_API_KEY, SECRET_ACCESS_KEY, BunnyApi, CloudFrontApi
from tests.conftest import gateway_process
from tests.rpc_calls import put


def test_debug_log_of_a_cdn_gateway_holds_no_secrets(tmp_path: Path) -> None:
    with CloudFrontApi().running() as cloudfront, BunnyApi().running() as bunny:
        env = gateway_env(tmp_path, cloudfront.endpoint, bunny.endpoint)
        cloudfront.failures = [403]
        with (
            gateway_process(tmp_path, **env, GATEWAY_LOG_LEVEL="DEBUG") as gateway,
            grpc.insecure_channel(gateway.target) as channel,
        ):
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            put(stub, "k", b"payload", bucket="media")
            assert cloudfront.take().status == 403
            put(stub, "k", b"payload again", bucket="media")
            assert cloudfront.take().status == 201
            put(stub, "c", b"clip", bucket="clips")
            assert bunny.take().status == 200
            for bucket in ("media", "clips", "custom"):
                request = pb.SignUrlRequest(bucket=bucket, key="k", method=pb.SIGNED_METHOD_GET)
                assert stub.SignUrl(request).route == pb.URL_ROUTE_CDN
    log = "".join(gateway.log_lines)
    assert '"level": "debug"' in log  # DEBUG was on
    assert "CloudFront answered HTTP 403" in log  # the failed purge was logged
    pem_lines = (tmp_path / "cloudfront.pem").read_text().splitlines()[1:-1]
    for secret in (BUNNY_TOKEN_KEY, SECRET_ACCESS_KEY, BUNNY_API_KEY, *pem_lines):
        assert secret not in log
    for signed in ("Signature=", "token=HS256-", "AccessKey", "Authorization"):
        assert signed not in log
