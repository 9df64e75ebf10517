"""Signed POST URLs (HTML-form uploads) served by the gateway's HTTP listener,
over real HTTP, on the memory and local backends (gateway/http_form.py)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from gateway.core.signing import UrlSigner
from gateway.domain.errors import GatewayError, Reason
from tests.http.signed_env import (
    DATA,
    GATEWAY_MAX,
    SECRET,
    Env,
    assert_missing,
    with_query,
)


async def post_form(
    env: Env, url: str, fields: dict[str, str], data: bytes, **file_options: Any
) -> Any:
    file = ("upload.bin", data, *([file_options["type"]] if "type" in file_options else []))
    return await env.client.post(url, data=fields, files={"file": file})


async def test_post_form_then_read_back(env: Env) -> None:
    signed = env.signer.sign("alpha", "forms/a.bin", "POST", 60, content_type="image/png")
    assert signed.method == "POST"
    assert signed.headers == {}
    assert signed.form_fields == {"Content-Type": "image/png"}

    response = await post_form(env, signed.url, signed.form_fields, DATA)

    assert response.status_code == 200, response.text
    meta, data = await env.read("forms/a.bin")
    assert data == DATA
    assert meta.content_type == "image/png"
    assert response.json()["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert response.json()["size"] == len(DATA)


async def test_post_without_bound_type_takes_the_file_part_type(env: Env) -> None:
    signed = env.signer.sign("alpha", "notes.txt", "POST", 60)
    assert signed.form_fields == {}
    response = await post_form(env, signed.url, {"x-ignore-note": "hi"}, b"abc", type="text/csv")
    assert response.status_code == 200, response.text
    meta, data = await env.read("notes.txt")
    assert (data, meta.content_type) == (b"abc", "text/csv")


@pytest.mark.parametrize(
    "fields",
    [
        {"Content-Type": "text/html"},  # not the bound type
        {},  # bound type missing, file part says application/octet-stream
        {"Content-Type": "image/png", "acl": "public-read"},  # a field the URL does not allow
    ],
)
async def test_post_fields_the_url_does_not_allow_are_403(env: Env, fields: dict[str, str]) -> None:
    signed = env.signer.sign("alpha", "pic", "POST", 60, content_type="image/png")
    response = await post_form(env, signed.url, fields, b"<html>")
    assert response.status_code == 403
    assert response.headers["X-Sgw-Reason"] == "PERMISSION_DENIED"
    await assert_missing(env.backend, "pic")
    assert env.calls == []  # refused before a write was opened


async def test_post_size_range(env: Env) -> None:
    signed = env.signer.sign("alpha", "ranged", "POST", 60, min_size=3, max_size=10)
    too_big = await post_form(env, signed.url, {}, b"x" * 11)
    assert too_big.status_code == 413
    assert too_big.headers["X-Sgw-Reason"] == "OBJECT_TOO_LARGE"
    too_small = await post_form(env, signed.url, {}, b"xy")
    assert too_small.status_code == 400
    assert too_small.headers["X-Sgw-Reason"] == "OBJECT_TOO_SMALL"
    assert "below" in too_small.text
    await assert_missing(env.backend, "ranged")
    for size in (3, 10):
        response = await post_form(env, signed.url, {}, b"x" * size)
        assert response.status_code == 200, response.text
        assert (await env.read("ranged"))[1] == b"x" * size


async def test_post_over_gateway_max_is_413(env: Env) -> None:
    signed = env.signer.sign("alpha", "huge", "POST", 60)
    response = await post_form(env, signed.url, {}, b"z" * (GATEWAY_MAX + 1))
    assert response.status_code == 413
    await assert_missing(env.backend, "huge")


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"raw bytes", {"Content-Type": "application/octet-stream"}, "multipart/form-data"),
        (
            b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nv\r\n--b--\r\n',
            {"Content-Type": "multipart/form-data; boundary=b"},
            '"file"',
        ),
    ],
)
async def test_post_that_is_not_a_form_with_a_file_is_400(
    env: Env, body: bytes, headers: dict[str, str], message: str
) -> None:
    signed = env.signer.sign("alpha", "k", "POST", 60)
    response = await env.client.post(signed.url, content=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["X-Sgw-Reason"] == "INVALID_ARGUMENT"
    assert message in response.text
    await assert_missing(env.backend, "k")


async def test_post_url_is_bound_to_its_size_range_and_method(env: Env) -> None:
    signed = env.signer.sign("alpha", "k", "POST", 60, max_size=10)
    widened = with_query(signed.url, X_Sgw_Max_Size="1000")
    response = await post_form(env, widened, {}, b"x" * 11)
    assert response.status_code == 403
    dropped = with_query(signed.url, X_Sgw_Max_Size=None)
    assert (await post_form(env, dropped, {}, b"x")).status_code == 403
    assert (await env.client.put(signed.url, content=b"x")).status_code == 403
    put_url = env.signer.sign("alpha", "k", "PUT", 60).url
    assert (await post_form(env, put_url, {}, b"x")).status_code == 403
    await assert_missing(env.backend, "k")


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("PUT", {"min_size": 1}),  # only POST has a lower bound
        ("GET", {"min_size": 1}),
        ("POST", {"min_size": -1}),
        ("POST", {"min_size": 11, "max_size": 10}),
        ("POST", {"download": True}),
    ],
)
def test_post_options_checked(method: Any, options: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as caught:
        UrlSigner(SECRET, "http://gw").sign("alpha", "k", method, 60, **options)
    assert caught.value.reason == Reason.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "malformed multipart/form-data body"),
        (b"garbage", "malformed multipart/form-data body"),
        (b"--b\r\n", "malformed multipart/form-data body"),
        # Cut before the boundary that ends the file: nothing may be stored.
        (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\nabc',
            'the form ended inside its "file" field',
        ),
    ],
)
async def test_malformed_or_cut_form_is_400_and_stores_nothing(
    env: Env, body: bytes, message: str
) -> None:
    signed = env.signer.sign("alpha", "k", "POST", 60)
    response = await env.client.post(
        signed.url, content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 400
    assert response.headers["X-Sgw-Reason"] == "INVALID_ARGUMENT"
    assert response.text.strip() == message
    await assert_missing(env.backend, "k")
