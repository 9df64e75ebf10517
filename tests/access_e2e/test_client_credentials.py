"""The Python clients and the CLI against a real gateway over TLS and mutual
TLS: the server CA, a client certificate whose SPIFFE id (URI SAN) becomes
the caller, and an API key as bearer token, each held to the policy."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.access.api_keys import hash_key
from storagegw import AccessDenied, AsyncClient, Client, CredentialsMissing, TlsConfig
from tests.certs import spiffe_leaf
from tests.client.cli_command import CLI
from tests.conftest import RunningGateway, run_gateway
from tests.transport.pki import Pki

BILLING = "spiffe://corp/ns/billing/sa/api"
UPLOADER_KEY = "sgw_test-key-of-the-ci-uploader-0123"

# SPIFFE ids hold "/", which {principal} templates refuse by design (a
# principal "bob/x" must not land inside bob's space): billing's grant names
# its prefix outright.
POLICY = f"""
[[api_keys]]
principal = "ci-uploader"
sha256 = "{hash_key(UPLOADER_KEY)}"

[[grants]]
principals = ["{BILLING}"]
actions = ["read", "write", "list"]
buckets = ["*"]
prefixes = ["tenants/billing/"]

[[grants]]
principals = ["ci-uploader"]
actions = ["read", "write"]
buckets = ["*"]
prefixes = ["ci/"]
"""


@dataclass(frozen=True)
class Billing:
    """The SPIFFE client certificate's files, issued by the client CA."""

    cert_file: Path
    key_file: Path

    def tls(self, pki: Pki) -> TlsConfig:
        return TlsConfig(ca=pki.ca_file, cert=self.cert_file, key=self.key_file)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


@pytest.fixture
def billing(pki: Pki) -> Billing:
    cert, key = spiffe_leaf(pki.client_ca, BILLING)
    files = Billing(pki.directory / "billing.pem", pki.directory / "billing.key")
    files.cert_file.write_bytes(cert)
    files.key_file.write_bytes(key)
    return files


def _gateway(env: dict[str, str], directory: Path) -> Iterator[RunningGateway]:
    policy = directory / "policy.toml"
    policy.write_text(POLICY)
    settings = {"STORAGE_BACKEND": "memory", "GATEWAY_POLICY": str(policy), **env}
    with run_gateway(settings, directory) as running:
        yield running


@pytest.fixture
def mtls_gateway(pki: Pki, tmp_path: Path) -> Iterator[RunningGateway]:
    yield from _gateway(pki.mtls_env(), tmp_path)


@pytest.fixture
def tls_gateway(pki: Pki, tmp_path: Path) -> Iterator[RunningGateway]:
    """TLS without client certificates: callers bring an API key."""
    yield from _gateway(pki.env(), tmp_path)


# ---------------------------------------------------------------- mutual TLS


def test_the_spiffe_id_is_the_caller(
    mtls_gateway: RunningGateway, pki: Pki, billing: Billing
) -> None:
    with Client(mtls_gateway.target, tls=billing.tls(pki), timeout=30) as client:
        client.put_bytes("tenants/billing/invoice.csv", b"id,total\n1,42\n")
        assert client.get_bytes("tenants/billing/invoice.csv") == b"id,total\n1,42\n"
        assert [o.key for o in client.list("tenants/billing/")] == ["tenants/billing/invoice.csv"]
        with pytest.raises(AccessDenied):
            client.put_bytes("tenants/payroll/salaries.csv", b"no")
        with pytest.raises(AccessDenied):
            client.head("ci/build.log")  # denied whether or not it exists
        with pytest.raises(AccessDenied):
            client.delete("tenants/billing/invoice.csv")  # no delete in the grant


def test_another_certificate_of_the_ca_is_someone_else(
    mtls_gateway: RunningGateway, pki: Pki
) -> None:
    # The CA's other client (CN svc-billing, no URI SAN) holds no grant at all.
    tls = TlsConfig(ca=pki.ca_file, cert=pki.client_cert_file, key=pki.client_key_file)
    with Client(mtls_gateway.target, tls=tls, timeout=30) as client, pytest.raises(AccessDenied):
        client.put_bytes("tenants/billing/forged.csv", b"no")


async def test_async_client_over_mutual_tls(
    mtls_gateway: RunningGateway, pki: Pki, billing: Billing
) -> None:
    async with AsyncClient(mtls_gateway.target, tls=billing.tls(pki), timeout=30) as client:
        await client.put_bytes("tenants/billing/async.csv", b"async")
        assert await client.get_bytes("tenants/billing/async.csv") == b"async"
        with pytest.raises(AccessDenied):
            await client.get_bytes("tenants/payroll/salaries.csv")


# ---------------------------------------------------------------- TLS + API key


def test_tls_and_an_api_key(tls_gateway: RunningGateway, pki: Pki) -> None:
    tls = TlsConfig(ca=pki.ca_file)
    with Client(tls_gateway.target, tls=tls, token=UPLOADER_KEY, timeout=30) as client:
        client.put_bytes("ci/build.log", b"ok")
        assert client.get_bytes("ci/build.log") == b"ok"
        with pytest.raises(AccessDenied):
            client.put_bytes("tenants/billing/invoice.csv", b"no")
    anonymous = Client(tls_gateway.target, tls=tls, timeout=30)
    with anonymous, pytest.raises(CredentialsMissing):
        anonymous.get_bytes("ci/build.log")


async def test_async_client_with_a_token_provider(tls_gateway: RunningGateway, pki: Pki) -> None:
    tls = TlsConfig(ca=pki.ca_file)
    client = AsyncClient(
        tls_gateway.target, tls=tls, token_provider=lambda: UPLOADER_KEY, timeout=30
    )
    async with client:
        await client.put_bytes("ci/async.log", b"async ok")
        assert await client.get_bytes("ci/async.log") == b"async ok"


# ---------------------------------------------------------------- the CLI


def cli(
    running: RunningGateway, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STORAGEGW_")}
    return subprocess.run(
        [CLI, "--target", running.target, *args],
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_with_the_spiffe_certificate(
    mtls_gateway: RunningGateway, pki: Pki, billing: Billing, tmp_path: Path
) -> None:
    source = tmp_path / "invoice.csv"
    source.write_text("id,total\n1,42\n")
    mtls = ["--tls-ca", str(pki.ca_file), "--cert", str(billing.cert_file),
            "--key", str(billing.key_file)]  # fmt: skip
    put = cli(mtls_gateway, *mtls, "put", str(source), "tenants/billing/invoice.csv")
    assert put.returncode == 0, put.stderr
    got = cli(mtls_gateway, *mtls, "get", "tenants/billing/invoice.csv", "-")
    assert (got.returncode, got.stdout) == (0, "id,total\n1,42\n"), got.stderr
    denied = cli(mtls_gateway, *mtls, "put", str(source), "tenants/payroll/invoice.csv")
    assert denied.returncode != 0
    assert "ACCESS_DENIED" in denied.stderr or "denied" in denied.stderr.lower(), denied.stderr
    # Without the client certificate the gateway is not reached at all.
    bare = cli(
        mtls_gateway, "--tls-ca", str(pki.ca_file), "get", "tenants/billing/invoice.csv", "-"
    )
    assert bare.returncode != 0
    assert bare.stdout == ""


def test_cli_with_an_api_key_from_the_environment(
    tls_gateway: RunningGateway, pki: Pki, tmp_path: Path
) -> None:
    source = tmp_path / "build.log"
    source.write_text("ok\n")
    env = {"STORAGEGW_TOKEN": UPLOADER_KEY}
    tls = ["--tls-ca", str(pki.ca_file)]
    put = cli(tls_gateway, *tls, "put", str(source), "ci/build.log", env=env)
    assert put.returncode == 0, put.stderr
    got = cli(tls_gateway, *tls, "get", "ci/build.log", "-", env=env)
    assert (got.returncode, got.stdout) == (0, "ok\n"), got.stderr
    anonymous = cli(tls_gateway, *tls, "get", "ci/build.log", "-")
    assert anonymous.returncode != 0
    assert "CREDENTIALS_MISSING" in anonymous.stderr or "credentials" in anonymous.stderr.lower()
    assert UPLOADER_KEY not in put.stderr + got.stderr
