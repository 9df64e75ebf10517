"""A GetObject body the network breaks part-way: the S3 driver takes it up
again where it broke, pinned to the ETag it first read, so the caller gets
the whole object; an object replaced meanwhile is NOT_FOUND (the version
being read is gone, as on GCS), never bytes of two objects spliced together.

The gateway talks to moto through a TCP proxy that cuts every connection
once a number of bytes went from S3 to the gateway."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.backends.s3.reader import BODY_RESUMES
from storagegw import Client
from storagegw.errors import ObjectNotFound, Unavailable
from tests.conftest import S3_TEST_BUCKET, run_gateway
from tests.drivers import backend_env
from tests.servers import s3_client
from tests.tcp_proxy import TcpProxy

MiB = 1024 * 1024
DATA = os.urandom(8 * MiB)


@dataclass
class Setup:
    client: Client
    proxy: TcpProxy
    s3: Any  # boto3, straight to moto (not through the proxy)


@pytest.fixture
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    env = backend_env(request, "s3-moto")
    endpoint = env["STORAGE_S3_ENDPOINT"]
    with TcpProxy(endpoint.removeprefix("http://")) as proxy:
        env["STORAGE_S3_ENDPOINT"] = f"http://{proxy.target}"
        s3 = s3_client(endpoint, env["STORAGE_S3_ACCESS_KEY"], env["STORAGE_S3_SECRET_KEY"])
        with run_gateway(env, tmp_path) as running, Client(running.target) as client:
            client.put_bytes("big.bin", DATA)
            yield Setup(client, proxy, s3)


def test_a_body_broken_part_way_is_taken_up_where_it_broke(setup: Setup) -> None:
    setup.proxy.cut_after(downstream=3 * MiB)
    assert setup.client.get_bytes("big.bin") == DATA
    assert setup.proxy.cuts == 1
    # Taken up, not read again from the start: the proxy carried about the
    # object once (plus request and response headers), not 3 MiB more.
    assert setup.proxy.downstream_bytes < len(DATA) + 2 * MiB


def test_a_range_broken_part_way_is_taken_up_where_it_broke(setup: Setup) -> None:
    setup.proxy.cut_after(downstream=2 * MiB)
    assert setup.client.get_bytes("big.bin", offset=MiB, length=5 * MiB) == DATA[MiB : 6 * MiB]
    assert setup.proxy.cuts == 1


def test_an_object_replaced_while_its_body_was_broken_is_refused(setup: Setup) -> None:
    # The proxy replaces it at the cut, before the driver can reconnect.
    replacement = os.urandom(8 * MiB)

    def replace() -> None:
        setup.s3.put_object(Bucket=S3_TEST_BUCKET, Key="big.bin", Body=replacement)

    setup.proxy.cut_after(downstream=3 * MiB, then=replace)
    with pytest.raises(ObjectNotFound) as refused:
        setup.client.get_bytes("big.bin")
    assert str(refused.value) == "object 'big.bin' was replaced or deleted while being read"
    assert setup.proxy.cuts == 1
    assert setup.client.get_bytes("big.bin") == replacement


def test_a_body_that_keeps_breaking_is_given_up_on(setup: Setup) -> None:
    # Cut at every MiB: the first body and each of its resumes break.
    setup.proxy.cut_after(downstream=MiB, times=BODY_RESUMES + 1)
    with pytest.raises(Unavailable) as failed:
        setup.client.get_bytes("big.bin")
    assert failed.value.reason == "BACKEND_UNAVAILABLE"
    assert "GetObject" in str(failed.value)
    assert setup.proxy.cuts == BODY_RESUMES + 1
    assert setup.client.get_bytes("big.bin") == DATA  # once the network holds again


def test_download_file_resumes_past_a_body_given_up_on(setup: Setup, tmp_path: Path) -> None:
    setup.proxy.cut_after(downstream=MiB, times=BODY_RESUMES + 1)
    setup.client.download_file("big.bin", tmp_path / "big.bin", parallel=1)
    assert (tmp_path / "big.bin").read_bytes() == DATA
    assert setup.proxy.cuts == BODY_RESUMES + 1
