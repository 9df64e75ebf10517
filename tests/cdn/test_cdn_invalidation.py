"""CDN invalidation after writes and deletes, against local stand-ins of
CloudFront's CreateInvalidation and Bunny's purge API that check each
request's signature (or key) and shape: every way of changing a key leads to
a purge of its path, and a failing CDN API never fails the write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.cdn.invalidation import CloudFrontInvalidator
from gateway.cdn.secret import Secret
from storagegw import Client
from tests.cdn.cdn_gateways import BUNNY_BASE, gateway_env
from tests.cdn.standins import (
    ACCESS_KEY_ID,
    DISTRIBUTION_ID,
    BunnyApi,
    CloudFrontApi,
)
from tests.conftest import RunningGateway, run_gateway
from tests.log_records import captured
from tests.telemetry.scrape import scrape_until, value


@pytest.fixture
def cloudfront() -> Iterator[CloudFrontApi]:
    with CloudFrontApi().running() as api:
        yield api  # type: ignore[misc]


@pytest.fixture
def bunny() -> Iterator[BunnyApi]:
    with BunnyApi().running() as api:
        yield api  # type: ignore[misc]


@pytest.fixture
def gateway(tmp_path: Path, cloudfront: CloudFrontApi, bunny: BunnyApi) -> Iterator[RunningGateway]:
    env = gateway_env(tmp_path, cloudfront.endpoint, bunny.endpoint)
    with run_gateway(env, tmp_path / "data") as running:
        yield running


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[Client]:
    with Client(gateway.target) as client:
        yield client


def test_a_put_and_a_delete_are_invalidated_at_cloudfront(
    client: Client, cloudfront: CloudFrontApi
) -> None:
    client.put_bytes("photos/a b.jpg", b"v1", bucket="media")
    first = cloudfront.take()
    assert (first.status, first.paths) == (201, ["/media/photos/a%20b.jpg"])
    client.put_bytes("photos/a b.jpg", b"v2", bucket="media")  # the overwrite
    assert cloudfront.take().paths == ["/media/photos/a%20b.jpg"]
    assert client.delete("photos/a b.jpg", bucket="media")
    last = cloudfront.take()
    assert last.paths == ["/media/photos/a%20b.jpg"]
    # A new CallerReference each time: CloudFront would take a repeated one as a retry.
    assert len({first.caller_reference, last.caller_reference}) == 2


def test_every_way_of_changing_keys_is_invalidated(
    client: Client, cloudfront: CloudFrontApi
) -> None:
    client.put_bytes("src", b"source", bucket="media")
    assert cloudfront.take().paths == ["/media/src"]
    client.copy("src", "copied", src_bucket="media", dst_bucket="media")
    assert cloudfront.take().paths == ["/media/copied"]
    client.delete_many(["src", "copied", "never-there"], bucket="media")
    taken = cloudfront.paths_until({"/media/src", "/media/copied"})
    # A delete of nothing changes nothing: not purged.
    assert sorted(path for request in taken for path in request.paths) == [
        "/media/copied",
        "/media/src",
    ]
    upload = client.start_upload("resumed", bucket="media")
    client.write_upload(upload.upload_id, b"all of it", offset=0, finish=True)
    assert cloudfront.take().paths == ["/media/resumed"]
    signed = client.sign_url("signed-put", bucket="media", method="PUT")
    assert httpx.put(signed.url, content=b"x", headers=signed.headers, timeout=30).is_success
    assert cloudfront.take().paths == ["/media/signed-put"]
    assert cloudfront.received.empty()


def test_a_bunny_bucket_is_purged_by_url(client: Client, bunny: BunnyApi) -> None:
    client.put_bytes("clip.mp4", b"frames", bucket="clips")
    assert bunny.take().paths == [f"{BUNNY_BASE}/clip.mp4"]
    client.delete("clip.mp4", bucket="clips")
    assert bunny.take().paths == [f"{BUNNY_BASE}/clip.mp4"]


def test_a_failing_cdn_api_does_not_fail_the_write(
    client: Client, cloudfront: CloudFrontApi, bunny: BunnyApi
) -> None:
    cloudfront.failures = [503]
    bunny.failures = [500]
    with captured("storagegw") as records:
        info = client.put_bytes("k", b"stored anyway", bucket="media")
        assert cloudfront.take().status == 503
        client.put_bytes("c", b"stored anyway", bucket="clips")
        assert bunny.take().status == 500
        # Purging goes on after a failure.
        client.put_bytes("k2", b"next", bucket="media")
        assert cloudfront.take().paths == ["/media/k2"]
    assert info.size == len(b"stored anyway")
    assert client.get_bytes("k", bucket="media") == b"stored anyway"
    assert client.get_bytes("c", bucket="clips") == b"stored anyway"
    failures = [r.getMessage() for r in records.records if "CDN purge" in r.getMessage()]
    assert any("CloudFront answered HTTP 503 (ServiceUnavailable)" in m for m in failures)


def test_buckets_without_invalidation_send_nothing(
    client: Client, cloudfront: CloudFrontApi
) -> None:
    client.put_bytes("quiet", b"x", bucket="custom")
    client.put_bytes("quiet", b"x", bucket="plain")
    client.put_bytes("loud", b"x", bucket="media")
    assert cloudfront.take().paths == ["/media/loud"]  # the first and only request


async def test_a_bad_signature_is_what_the_stand_in_refuses(cloudfront: CloudFrontApi) -> None:
    # The stand-in is a real check: a wrong secret fails as CloudFront would.
    wrong = CloudFrontInvalidator(
        "https://d.cloudfront.net",
        DISTRIBUTION_ID,
        ACCESS_KEY_ID,
        Secret("not-the-secret"),
        endpoint=cloudfront.endpoint,
    )
    try:
        failure = await wrong.purge(["k"])
    finally:
        await wrong.close()
    assert failure == "CloudFront answered HTTP 403 (SignatureDoesNotMatch)"
    assert "not-the-secret" not in failure
    assert cloudfront.received.empty()


def test_purge_outcomes_are_counted_in_the_metrics(
    tmp_path: Path, cloudfront: CloudFrontApi, bunny: BunnyApi
) -> None:
    env = gateway_env(tmp_path, cloudfront.endpoint, bunny.endpoint)
    env["GATEWAY_METRICS_LISTEN"] = "127.0.0.1:0"
    cloudfront.failures = [500]
    with run_gateway(env, tmp_path / "data") as running, Client(running.target) as client:
        assert running.gateway.telemetry is not None
        port = running.gateway.telemetry.metrics_port
        client.put_bytes("refused", b"x", bucket="media")
        assert cloudfront.take().status == 500
        client.put_bytes("accepted", b"x", bucket="media")
        assert cloudfront.take().status == 201
        metric = "storagegw_cdn_purges_total"
        samples = scrape_until(
            port, lambda s: value(s, metric, bucket="media", outcome="sent") == 1
        )
    assert value(samples, metric, bucket="media", outcome="failed") == 1
    assert value(samples, metric, bucket="media", outcome="sent") == 1
