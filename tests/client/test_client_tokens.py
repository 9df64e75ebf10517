"""Bearer tokens from the clients: static or from a provider, refreshed when
expired, never sent in clear to another host nor shown; against a server that
says what it saw of each call (tests/client/auth_server.py), and a real gateway."""

from __future__ import annotations

import os
import subprocess

import grpc
import pytest

from storagegw import (
    AsyncClient,
    BucketNotFound,
    Client,
    CredentialsMissing,
    ObjectNotFound,
    TlsConfig,
    TokenExpired,
)
from storagegw._credentials import is_loopback
from tests.client.auth_server import Server
from tests.client.cli_command import CLI
from tests.conftest import RunningGateway


def test_the_provider_is_asked_before_every_call(plain_server: Server) -> None:
    tokens = iter(["t1", "t2", "t3"])
    with Client(plain_server.target, token_provider=lambda: next(tokens), timeout=30) as client:
        first = client.head("a").metadata["authorization"]
        second = client.head("b").metadata["authorization"]
    assert (first, second) == ("Bearer t1", "Bearer t2")


def test_an_expired_token_is_refreshed_and_the_call_sent_again(plain_server: Server) -> None:
    plain_server.doorkeeper.expired.add("old")
    tokens = iter(["old", "new"])
    with Client(plain_server.target, token_provider=lambda: next(tokens), timeout=30) as client:
        seen = client.head("k").metadata
    assert seen["authorization"] == "Bearer new"
    assert plain_server.doorkeeper.seen == ["Bearer old", "Bearer new"]


def test_the_same_token_again_is_not_retried(plain_server: Server) -> None:
    plain_server.doorkeeper.expired.add("stale-secret")
    with Client(plain_server.target, token_provider=lambda: "stale-secret", timeout=30) as c:
        with pytest.raises(TokenExpired) as raised:
            c.head("k")
        assert "stale-secret" not in repr(c)
    assert plain_server.doorkeeper.seen == ["Bearer stale-secret"]
    assert "stale-secret" not in str(raised.value)
    assert "stale-secret" not in repr(raised.value)


def test_a_static_token_that_expired_is_raised(plain_server: Server) -> None:
    plain_server.doorkeeper.expired.add("s3cr3t-static")
    with Client(plain_server.target, token="s3cr3t-static", timeout=30) as client:
        with pytest.raises(TokenExpired) as raised:
            client.head("k")
        assert "s3cr3t-static" not in repr(client)
        assert "s3cr3t-static" not in repr(vars(client))
    assert "s3cr3t-static" not in str(raised.value)


def test_streams_carry_the_token_too(plain_server: Server) -> None:
    plain_server.doorkeeper.requires_credentials = True
    with Client(plain_server.target, token="tok-s", timeout=30) as client:
        with pytest.raises(ObjectNotFound):
            client.get_bytes("k")
        with pytest.raises(BucketNotFound):
            client.put_bytes("k", b"data")
    with Client(plain_server.target, timeout=30) as client, pytest.raises(CredentialsMissing):
        client.get_bytes("k")
    assert plain_server.doorkeeper.seen == ["Bearer tok-s", "Bearer tok-s", ""]


async def test_async_provider_refreshed_after_expiry(plain_server: Server) -> None:
    plain_server.doorkeeper.expired.add("old")
    plain_server.doorkeeper.requires_credentials = True
    tokens = iter(["old", "new", "newer", "newest"])
    calls: list[str] = []

    async def provider() -> str:
        calls.append("asked")
        return next(tokens)

    async with AsyncClient(plain_server.target, token_provider=provider, timeout=30) as client:
        seen = (await client.head("k")).metadata
        with pytest.raises(ObjectNotFound):
            await client.get_bytes("k")
        with pytest.raises(BucketNotFound):
            await client.put_bytes("k", b"data")
    assert seen["authorization"] == "Bearer new"
    assert plain_server.doorkeeper.seen == [
        "Bearer old",
        "Bearer new",
        "Bearer newer",
        "Bearer newest",
    ]
    assert len(calls) == 4


async def test_async_client_takes_a_sync_provider(plain_server: Server) -> None:
    async with AsyncClient(plain_server.target, token_provider=lambda: "tok-sync") as client:
        seen = (await client.head("k")).metadata
    assert seen["authorization"] == "Bearer tok-sync"


def test_a_token_is_not_sent_in_clear_to_another_host() -> None:
    with pytest.raises(ValueError, match="in clear") as raised:
        Client("gateway.example:50051", token="never-in-clear")
    assert "never-in-clear" not in str(raised.value)
    # TLS, or the caller's own channel, is the caller's decision.
    Client("gateway.example:50051", token="t", tls=TlsConfig()).close()
    with grpc.insecure_channel("gateway.example:50051") as channel:
        Client("gateway.example:50051", token="t", channel=channel).close()


@pytest.mark.parametrize(
    ("target", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.3.2.1:1", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("dns:///localhost:50051", True),
        ("unix:/run/gw.sock", True),
        ("10.0.0.1:50051", False),
        ("gateway:50051", False),
        ("[2001:db8::1]:50051", False),
        ("dns:///storage.example.com:443", False),
    ],
)
def test_loopback_targets(target: str, loopback: bool) -> None:
    assert is_loopback(target) is loopback


@pytest.mark.parametrize("bad", ["", " padded", "two\nlines"])
def test_malformed_tokens_are_refused_without_showing_them(bad: str) -> None:
    with pytest.raises(ValueError, match="token must be") as raised:
        Client(token=bad)
    assert bad.strip() == "" or bad.strip() not in str(raised.value)


def test_token_and_provider_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="not both"):
        Client(token="a", token_provider=lambda: "b")


def test_a_gateway_without_authentication_takes_calls_with_a_token(
    memory_gateway: RunningGateway,
) -> None:
    # Until a gateway authenticates, a token is harmless: every call still works.
    data = os.urandom(3 * 1024 * 1024)
    with Client(memory_gateway.target, token_provider=lambda: "tok") as client:
        client.put_bytes("t/obj", data)
        assert client.get_bytes("t/obj") == data
        assert client.head("t/obj").size == len(data)
    result = subprocess.run(
        [CLI, "--target", memory_gateway.target, "ls", "t/"],
        env={**os.environ, "STORAGEGW_TOKEN": "tok"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.split()) == (0, ["t/obj"]), result.stderr
