"""TLS, mutual TLS and bearer tokens from the clients and the CLI.

The clients run against a small gRPC server started here over a real TLS
socket (certificates made with trustme): it implements just enough of
StorageService to say what it saw of each call (the authorization metadata,
the client certificate's name) and to refuse a token as the gateway does
(UNAUTHENTICATED with TOKEN_EXPIRED or CREDENTIALS_MISSING).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import trustme
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from storagegw import (
    AsyncClient,
    BucketNotFound,
    Client,
    CredentialsMissing,
    ObjectNotFound,
    TlsConfig,
    TokenExpired,
    Unavailable,
)
from storagegw._credentials import is_loopback
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import REPO, RunningGateway

CLI = str(REPO / ".venv" / "bin" / "storagegw")
if not Path(CLI).exists():  # installed elsewhere (e.g. a system-wide pip install)
    CLI = str(Path(sys.executable).with_name("storagegw"))


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, reason: str, text: str) -> None:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="storagegw"))
    status = status_pb2.Status(code=code.value[0], message=text, details=[detail])
    context.abort_with_status(rpc_status.to_status(status))


@dataclass
class Doorkeeper(storage_pb2_grpc.StorageServiceServicer):
    """Says what it saw of each call's credentials; refuses as the gateway would."""

    expired: set[str] = field(default_factory=set)
    requires_credentials: bool = False
    seen: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _admit(self, context: grpc.ServicerContext) -> tuple[str, str]:
        authorization = dict(context.invocation_metadata()).get("authorization", "")
        with self._lock:
            self.seen.append(authorization)
        peer = context.auth_context().get("x509_common_name", [b""])[0].decode()
        if authorization.removeprefix("Bearer ") in self.expired:
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED", "token expired")
        if self.requires_credentials and not (authorization or peer):
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_MISSING", "who are you?")
        return authorization, peer

    def Head(self, request: pb.HeadRequest, context: grpc.ServicerContext) -> pb.HeadResponse:
        authorization, peer = self._admit(context)
        transport = context.auth_context().get("transport_security_type", [b"none"])[0]
        seen = {"authorization": authorization, "peer": peer, "transport": transport.decode()}
        return pb.HeadResponse(object=pb.ObjectInfo(key=request.key, metadata=seen))

    def Get(
        self, request: pb.GetRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.GetResponse]:
        self._admit(context)
        _abort(context, grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND", "no such object")
        yield from ()

    def Put(
        self, request_iterator: Iterator[pb.PutRequest], context: grpc.ServicerContext
    ) -> pb.PutResponse:
        self._admit(context)
        _abort(context, grpc.StatusCode.NOT_FOUND, "BUCKET_NOT_FOUND", "no such bucket")
        return pb.PutResponse()


@dataclass(frozen=True)
class Pki:
    """A CA, the server's certificate and a client's, also as PEM files."""

    ca: trustme.CA
    server: trustme.LeafCert
    client: trustme.LeafCert
    ca_file: Path
    client_cert_file: Path
    client_key_file: Path

    def server_credentials(self, *, mutual: bool) -> grpc.ServerCredentials:
        chain = b"".join(pem.bytes() for pem in self.server.cert_chain_pems)
        return grpc.ssl_server_credentials(
            [(self.server.private_key_pem.bytes(), chain)],
            root_certificates=self.ca.cert_pem.bytes() if mutual else None,
            require_client_auth=mutual,
        )

    def client_tls(self) -> TlsConfig:
        chain = b"".join(pem.bytes() for pem in self.client.cert_chain_pems)
        return TlsConfig(ca=self.ca_file, cert=chain, key=self.client.private_key_pem.bytes())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("billing.internal", common_name="svc-billing")
    files = Pki(ca, server, client, directory / "ca.pem", directory / "c.pem", directory / "c.key")
    ca.cert_pem.write_to_path(str(files.ca_file))
    files.client_cert_file.write_bytes(b"".join(pem.bytes() for pem in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(files.client_key_file))
    return files


@dataclass
class Server:
    doorkeeper: Doorkeeper
    target: str


def _serve(credentials: grpc.ServerCredentials | None) -> Iterator[Server]:
    doorkeeper = Doorkeeper()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    storage_pb2_grpc.add_StorageServiceServicer_to_server(doorkeeper, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield Server(doorkeeper, f"127.0.0.1:{port}")
    server.stop(None)


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[Server]:
    yield from _serve(pki.server_credentials(mutual=False))


@pytest.fixture
def mtls_server(pki: Pki) -> Iterator[Server]:
    yield from _serve(pki.server_credentials(mutual=True))


@pytest.fixture
def plain_server() -> Iterator[Server]:
    yield from _serve(None)


# ---------------------------------------------------------------- TLS


def test_tls_checks_the_gateway_and_carries_the_token(tls_server: Server, pki: Pki) -> None:
    tls = TlsConfig(ca=str(pki.ca_file))
    with Client(tls_server.target, tls=tls, token="tok-1", timeout=30) as client:
        seen = client.head("k").metadata
    assert seen["transport"] == "ssl"
    assert seen["authorization"] == "Bearer tok-1"


def test_a_gateway_the_roots_do_not_vouch_for_is_refused(tls_server: Server) -> None:
    stranger = trustme.CA()
    tls = TlsConfig(ca=stranger.cert_pem.bytes())
    with Client(tls_server.target, tls=tls, timeout=30) as client, pytest.raises(Unavailable):
        client.head("k")
    assert tls_server.doorkeeper.seen == []


def test_mutual_tls_presents_the_client_certificate(mtls_server: Server, pki: Pki) -> None:
    with Client(mtls_server.target, tls=pki.client_tls(), timeout=30) as client:
        seen = client.head("k").metadata
    assert seen["peer"] == "svc-billing"
    assert seen["authorization"] == ""


def test_mutual_tls_without_a_certificate_is_refused(mtls_server: Server, pki: Pki) -> None:
    tls = TlsConfig(ca=pki.ca_file)
    with Client(mtls_server.target, tls=tls, timeout=30) as client, pytest.raises(Unavailable):
        client.head("k")
    assert mtls_server.doorkeeper.seen == []


async def test_async_client_over_mutual_tls(mtls_server: Server, pki: Pki) -> None:
    tls = TlsConfig(ca=pki.ca_file, cert=pki.client_cert_file, key=pki.client_key_file)
    async with AsyncClient(mtls_server.target, tls=tls, token="tok-a", timeout=30) as client:
        seen = (await client.head("k")).metadata
    assert (seen["peer"], seen["authorization"]) == ("svc-billing", "Bearer tok-a")


def test_tls_config_needs_both_cert_and_key(pki: Pki) -> None:
    with pytest.raises(ValueError, match="both cert and key"):
        TlsConfig(cert=pki.client_cert_file)


def test_tls_config_repr_hides_key_bytes(pki: Pki) -> None:
    tls = pki.client_tls()
    text = repr(tls)
    assert pki.client.private_key_pem.bytes().decode() not in text
    assert "key=<hidden>" in text
    assert str(pki.ca_file) in text


# ---------------------------------------------------------------- tokens


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


# ---------------------------------------------------------------- the CLI


def cli(
    server: Server, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STORAGEGW_")}
    return subprocess.run(
        [CLI, "--target", server.target, *args],
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def seen_by(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    metadata: dict[str, str] = json.loads(result.stdout)["metadata"]
    return metadata


def test_cli_token_from_the_environment_over_tls(tls_server: Server, pki: Pki) -> None:
    result = cli(
        tls_server, "--tls-ca", str(pki.ca_file), "stat", "k", "--json",
        env={"STORAGEGW_TOKEN": "env-tok"},
    )  # fmt: skip
    seen = seen_by(result)
    assert (seen["transport"], seen["authorization"]) == ("ssl", "Bearer env-tok")


def test_cli_token_file_and_flag(plain_server: Server, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-tok\n")
    from_file = seen_by(cli(plain_server, "stat", "k", "--json", "--token-file", str(token_file)))
    assert from_file["authorization"] == "Bearer file-tok"
    from_flag = seen_by(cli(plain_server, "--token", "flag-tok", "stat", "k", "--json"))
    assert from_flag["authorization"] == "Bearer flag-tok"


def test_cli_mutual_tls_from_flags_and_environment(mtls_server: Server, pki: Pki) -> None:
    flags = cli(
        mtls_server, "stat", "k", "--json", "--tls-ca", str(pki.ca_file),
        "--cert", str(pki.client_cert_file), "--key", str(pki.client_key_file),
    )  # fmt: skip
    assert seen_by(flags)["peer"] == "svc-billing"
    env = {
        "STORAGEGW_TLS_CA": str(pki.ca_file),
        "STORAGEGW_CERT": str(pki.client_cert_file),
        "STORAGEGW_KEY": str(pki.client_key_file),
    }
    assert seen_by(cli(mtls_server, "stat", "k", "--json", env=env))["peer"] == "svc-billing"


def test_cli_says_in_one_line_that_credentials_are_missing(plain_server: Server) -> None:
    plain_server.doorkeeper.requires_credentials = True
    result = cli(plain_server, "stat", "k")
    assert result.returncode == 8
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("storagegw: error: who are you? (CREDENTIALS_MISSING)")
    assert "STORAGEGW_TOKEN" in lines[0]


def test_cli_refuses_a_token_in_clear_to_another_host() -> None:
    result = subprocess.run(
        [CLI, "--target", "gateway.example:50051", "stat", "k"],
        env={**os.environ, "STORAGEGW_TOKEN": "env-secret"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 6
    assert "in clear" in result.stderr
    assert "env-secret" not in result.stderr


# ---------------------------------------------------------------- a real gateway


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
