"""A gateway whose signed URLs would name 0.0.0.0 says so at start: with
STORAGE_BASE_URL unset, URLs take the HTTP listener's address, and a wildcard
address is no place a client can reach (the container image listens on one).
Buckets whose store presigns (S3, GCS) hand out the store's URLs instead."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.server import unreachable_url_base
from tests.conftest import run_gateway
from tests.moto_server import MotoServer
from tests.servers import make_bucket

BASE = {"STORAGE_BACKEND": "memory", "GATEWAY_ALLOW_INSECURE": "1"}


def url_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and "STORAGE_BASE_URL" in record.getMessage()
    ]


def test_a_wildcard_http_listen_without_a_base_url_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {**BASE, "GATEWAY_HTTP_LISTEN": "0.0.0.0:0"}
    with caplog.at_level(logging.WARNING, logger="storagegw"), run_gateway(env, tmp_path):
        pass
    (warning,) = url_warnings(caplog)
    assert "GATEWAY_HTTP_LISTEN=0.0.0.0:0" in warning
    assert "bucket(s) default" in warning
    assert "http://0.0.0.0:0" in warning
    assert "set STORAGE_BASE_URL" in warning


@pytest.mark.parametrize(
    "env",
    [
        {"GATEWAY_HTTP_LISTEN": "0.0.0.0:0", "STORAGE_BASE_URL": "https://files.example.com"},
        {"GATEWAY_HTTP_LISTEN": "127.0.0.1:0"},
    ],
    ids=["base-url-set", "loopback"],
)
def test_no_warning_when_urls_name_a_reachable_address(
    env: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    at_warning = caplog.at_level(logging.WARNING, logger="storagegw")
    with at_warning, run_gateway({**BASE, **env}, tmp_path):
        pass
    assert url_warnings(caplog) == []


def test_no_warning_when_the_store_signs_every_url(
    moto_server: MotoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    moto_server.reset()
    make_bucket(moto_server.endpoint, moto_server.access_key, moto_server.secret_key, "urls")
    env = {
        **BASE,
        "GATEWAY_HTTP_LISTEN": "0.0.0.0:0",
        "STORAGE_BACKEND": "s3",
        "STORAGE_S3_BUCKET": "urls",
        "STORAGE_S3_ENDPOINT": moto_server.endpoint,
        "STORAGE_S3_ACCESS_KEY": moto_server.access_key,
        "STORAGE_S3_SECRET_KEY": moto_server.secret_key,
        "STORAGE_S3_REGION": "us-east-1",
    }
    at_warning = caplog.at_level(logging.WARNING, logger="storagegw")
    with at_warning, run_gateway(env, tmp_path):
        pass
    assert url_warnings(caplog) == []


@pytest.mark.parametrize(
    ("http_listen", "base_url", "unreachable"),
    [
        ("0.0.0.0:8080", "", "http://0.0.0.0:8080"), ("[::]:8080", "", "http://[::]:8080"),
        ("0.0.0.0:8080", "https://files.example.com", None),
        ("10.0.0.7:8080", "", None), ("127.0.0.1:8080", "", None),
    ],
)  # fmt: skip
def test_which_listens_make_unreachable_urls(
    http_listen: str, base_url: str, unreachable: str | None
) -> None:
    env = {**BASE, "GATEWAY_HTTP_LISTEN": http_listen}
    if base_url:
        env["STORAGE_BASE_URL"] = base_url
    assert unreachable_url_base(config_module.load(env)) == unreachable
