"""The URL signer without a listener: expiry bounds, the options each method takes, what
verify reports; and the secret it signs with, made once with mode 0600 or configured."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from gateway.core.signing import SignatureError, UrlSigner
from gateway.core.url_secret import load_or_create_secrets
from gateway.domain.errors import GatewayError, Reason
from tests.http.signed_env import SECRET, Clock

# --- signing options ----------------------------------------------------------


@pytest.mark.parametrize("expires_in", [0, 0.5, -5, 7 * 86400 + 1, float("inf")])
def test_expiry_out_of_bounds(expires_in: float) -> None:
    signer = UrlSigner(SECRET, "http://gw")
    with pytest.raises(GatewayError) as caught:
        signer.sign("alpha", "k", "GET", expires_in)
    assert caught.value.reason == Reason.INVALID_EXPIRY
    assert "1 second" in caught.value.message
    assert "604800" in caught.value.message


def test_expiry_bounds_and_default() -> None:
    clock = Clock(1000.0)
    signer = UrlSigner(SECRET, "http://gw/", clock=clock)
    assert signer.sign("alpha", "k", "GET", 1).expire_time_unix == 1001
    assert signer.sign("alpha", "k", "GET", 7 * 86400).expire_time_unix == 1000 + 7 * 86400
    default = signer.sign("alpha", "k", "PUT", None)
    assert default.expire_time_unix == 1000 + 3600
    assert default.url.startswith("http://gw/v1/b/alpha/o/k?")


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("GET", {"content_type": "text/plain"}),
        ("GET", {"max_size": 5}),
        ("GET", {"filename": "f.txt"}),  # filename without download
        ("PUT", {"download": True}),
        ("PUT", {"filename": "f.txt"}),
        ("PUT", {"max_size": -1}),
        ("PUT", {"content_type": "text/plain\r\nX-Evil: 1"}),
    ],
)
def test_options_that_do_not_fit_the_method(method: Any, options: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as caught:
        UrlSigner(SECRET, "http://gw").sign("alpha", "k", method, 60, **options)
    # A bad content type has its own reason; the status is INVALID_ARGUMENT all the same.
    expected = Reason.INVALID_CONTENT_TYPE if "\r" in options.get("content_type", "") else None
    assert caught.value.reason == (expected or Reason.INVALID_ARGUMENT)


def test_verify_allows_head_on_get_urls_and_reports_bound_options() -> None:
    signer = UrlSigner(SECRET, "http://gw", clock=Clock(0))
    url = signer.sign("alpha", "a/b c", "GET", 60, download=True, filename="x.txt").url
    query = dict(parse_qsl(urlsplit(url).query))
    assert urlsplit(url).path == "/v1/b/alpha/o/a/b%20c"
    verified = signer.verify("HEAD", "alpha", "a/b c", query)
    assert (verified.method, verified.download, verified.filename) == ("GET", True, "x.txt")
    with pytest.raises(SignatureError, match="method"):
        signer.verify("DELETE", "alpha", "a/b c", query)
    with pytest.raises(SignatureError, match="signature"):
        UrlSigner(SECRET[::-1], "http://gw").verify("GET", "alpha", "a/b c", query)


# --- the secret ---------------------------------------------------------------


def test_secret_file_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_or_create_secrets(None, tmp_path)
    path = tmp_path / ".url-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 1
    assert len(first.current.secret) == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == [".url-secret"]  # no temp left
    # A "restart": the same secret, so URLs signed before still verify.
    clock = Clock(5000)
    url = UrlSigner(first, "http://gw", clock=clock).sign("alpha", "k", "PUT", 60).url
    second = load_or_create_secrets(None, tmp_path)
    assert second.current == first.current
    query = dict(parse_qsl(urlsplit(url).query))
    assert UrlSigner(second, "http://gw", clock=clock).verify("PUT", "alpha", "k", query)


def test_secret_file_race_keeps_the_first_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = "ab" * 32
    real_link = os.link

    def link_after_another_process(src: Any, dst: Any) -> None:
        Path(dst).write_text(theirs + "\n")  # someone else won the race
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_another_process)
    assert load_or_create_secrets(None, tmp_path).current.secret == bytes.fromhex(theirs)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".url-secret"]


def test_configured_secret(tmp_path: Path) -> None:
    assert load_or_create_secrets("s" * 16, tmp_path).current.secret == b"s" * 16
    assert not (tmp_path / ".url-secret").exists()
    with pytest.raises(ValueError, match="STORAGE_URL_SECRET") as caught:
        load_or_create_secrets("too-short-secret"[:15], tmp_path)
    assert "too-short" not in str(caught.value)  # the secret is never echoed
