"""Signed URLs carry their signer: the HTTP listener checks the signer's grant
again when the URL is used, through the same guard as gRPC.

Two gateways share a data directory and URL secret: "lax", whose policy lets
anyone sign anything, and "strict", with the tenants' policy. A URL tenant A
got from lax for tenant B's object is refused by strict on every route (GET,
HEAD, PUT, POST), and so is a URL signed while authentication was off; A's
URLs for A's own space work on strict.

The gateway's own listener serves URLs for the local backend; S3 and GCS
presign natively, and their URLs go to the storage, not to this listener
(SignUrl's check covers them: tests/access_e2e/test_tenant_isolation.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import grpc
import httpx
import pytest

from storagegw.v1 import storage_pb2 as pb
from tests.access_e2e.tenants import LAX_GRANTS, A, B, Caller, Session, policy_gateway
from tests.conftest import RunningGateway, run_gateway
from tests.log_records import LogRecords

SECRET = "a-url-secret-both-gateways-share"
B_OBJECT = B.home + "payroll.csv"
ENV = {"STORAGE_BACKEND": "local", "STORAGE_URL_SECRET": SECRET}


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[RunningGateway]:
    with policy_gateway(ENV, tmp_path) as running:
        yield running


@pytest.fixture
def lax(tmp_path: Path, strict: RunningGateway) -> Iterator[RunningGateway]:
    with policy_gateway(ENV, tmp_path, LAX_GRANTS) as running:
        yield running


def _sign(gateway: RunningGateway, caller: Caller, key: str, method: int) -> str:
    with grpc.insecure_channel(gateway.target) as channel:
        signed: pb.SignUrlResponse = Session(channel).stub.SignUrl(
            pb.SignUrlRequest(key=key, method=method), metadata=caller.metadata
        )
    return signed.url


def _served_by(url: str, gateway: RunningGateway) -> str:
    """The same URL (same signature) pointed at gateway's listener."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=urlsplit(gateway.http_url).netloc))


def _routes(url_of: dict[int, str]) -> dict[str, httpx.Response]:
    with httpx.Client(timeout=30) as http:
        return {
            "GET": http.get(url_of[pb.SIGNED_METHOD_GET]),
            "HEAD": http.head(url_of[pb.SIGNED_METHOD_GET]),
            "PUT": http.put(url_of[pb.SIGNED_METHOD_PUT], content=b"overwritten"),
            "POST": http.post(url_of[pb.SIGNED_METHOD_POST], files={"file": ("f", b"posted")}),
        }


METHODS = (pb.SIGNED_METHOD_GET, pb.SIGNED_METHOD_PUT, pb.SIGNED_METHOD_POST)


def test_a_url_is_checked_against_its_signers_grant_when_used(
    strict: RunningGateway, lax: RunningGateway
) -> None:
    with grpc.insecure_channel(strict.target) as channel:
        Session(channel).put(B, B_OBJECT, b"salaries")
    urls = {m: _served_by(_sign(lax, A, B_OBJECT, m), strict) for m in METHODS}
    answers = _routes(urls)
    assert {
        route: (r.status_code, r.headers.get("X-Sgw-Reason")) for route, r in answers.items()
    } == (dict.fromkeys(answers, (403, "ACCESS_DENIED")))
    # The same URLs work where the signer's grant allows them (lax itself).
    with httpx.Client(timeout=30) as http:
        assert http.get(_sign(lax, A, B_OBJECT, pb.SIGNED_METHOD_GET)).content == b"salaries"
    with grpc.insecure_channel(strict.target) as channel:
        assert Session(channel).head(B, B_OBJECT).size == len(b"salaries")


def test_a_url_signed_without_authentication_is_refused_under_a_policy(
    strict: RunningGateway, tmp_path: Path
) -> None:
    with run_gateway(ENV, tmp_path) as anonymous:
        urls = {m: _served_by(_sign(anonymous, A, B_OBJECT, m), strict) for m in METHODS}
    answers = _routes(urls)
    assert {route: r.status_code for route, r in answers.items()} == dict.fromkeys(answers, 403)


def test_a_tenants_urls_for_its_own_space_work(strict: RunningGateway) -> None:
    key = A.home + "shared-with-a-browser.txt"
    with httpx.Client(timeout=30) as http:
        put = http.put(_sign(strict, A, key, pb.SIGNED_METHOD_PUT), content=b"hello")
        assert put.status_code == 200, put.text
        assert http.get(_sign(strict, A, key, pb.SIGNED_METHOD_GET)).content == b"hello"
        posted = http.post(
            _sign(strict, A, key, pb.SIGNED_METHOD_POST), files={"file": ("f", b"posted")}
        )
        assert posted.status_code == 200, posted.text
    url = _sign(strict, A, key, pb.SIGNED_METHOD_GET)
    # The URL names its signer (signed, so it cannot be changed) and no key material.
    assert "X-Sgw-Principal=tenant-a" in url
    assert A.key not in url


def test_signed_uploads_and_refused_urls_are_audited(
    strict: RunningGateway, lax: RunningGateway, audit_log: LogRecords
) -> None:
    key = A.home + "audited.txt"
    with httpx.Client(timeout=30) as http:
        assert http.put(_sign(strict, A, key, pb.SIGNED_METHOD_PUT), content=b"x").is_success
        refused = _served_by(_sign(lax, A, B_OBJECT, pb.SIGNED_METHOD_GET), strict)
        assert http.get(refused).status_code == 403
    put = audit_log.wait(lambda r: getattr(r, "method", "") == "HTTP PUT")
    get = audit_log.wait(lambda r: getattr(r, "method", "") == "HTTP GET")
    assert [
        (r.principal, r.proof, r.action, r.key, r.outcome, r.reason)  # type: ignore[attr-defined]
        for r in (put, get)
    ] == [
        ("tenant-a", "signed_url", "write", key, "OK", ""),
        ("tenant-a", "signed_url", "read", B_OBJECT, "PERMISSION_DENIED", "ACCESS_DENIED"),
    ]
    assert get.peer == "127.0.0.1"  # type: ignore[attr-defined]


def test_the_signer_named_in_a_url_cannot_be_changed(strict: RunningGateway) -> None:
    url = _sign(strict, A, A.home + "x.txt", pb.SIGNED_METHOD_PUT)
    forged = url.replace("X-Sgw-Principal=tenant-a", "X-Sgw-Principal=tenant-b")
    assert forged != url
    with httpx.Client(timeout=30) as http:
        answer = http.put(forged, content=b"x")
    assert (answer.status_code, answer.headers["X-Sgw-Reason"]) == (403, "PERMISSION_DENIED")
    assert "bad signature" in answer.text
