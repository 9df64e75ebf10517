"""`python -m gateway.healthcheck`, the container's HEALTHCHECK: it finds the gateway
where GATEWAY_LISTEN says, over TLS when the gateway serves TLS, and exits 0 only on
SERVING."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from gateway.healthcheck import ProbeError, check, probe_target
from tests.conftest import run_gateway
from tests.transport.pki import Pki

BASE = {"STORAGE_BACKEND": "memory"}


@pytest.mark.parametrize(
    ("listen", "target"),
    [
        ("0.0.0.0:50051", "127.0.0.1:50051"), (":8443", "127.0.0.1:8443"),
        ("[::]:50051", "[::1]:50051"), ("127.0.0.1:7", "127.0.0.1:7"),
        ("[::1]:7", "[::1]:7"), ("10.1.2.3:7", "10.1.2.3:7"), ("gw.internal:7", "gw.internal:7"),
    ],
)  # fmt: skip
def test_a_wildcard_listen_is_asked_on_loopback(listen: str, target: str) -> None:
    assert probe_target(listen) == target


def run_probe(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.healthcheck"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_probe_follows_the_configured_port(tmp_path: Path) -> None:
    # Served on every address, as in the container: the probe reads the port from
    # GATEWAY_LISTEN at run time and asks on loopback.
    env = {**BASE, "GATEWAY_LISTEN": "0.0.0.0:0", "GATEWAY_ALLOW_INSECURE": "1"}
    with run_gateway(env, tmp_path) as running:
        listen = f"0.0.0.0:{running.gateway.grpc_port}"
        result = run_probe(GATEWAY_LISTEN=listen)
        assert result.returncode == 0, result.stderr
        assert check({"GATEWAY_LISTEN": listen}) == "SERVING"
        # A service the gateway does not have is no success.
        unknown = subprocess.run(
            [sys.executable, "-m", "gateway.healthcheck", "--service", "no.such.Service"],
            env={"PATH": os.environ.get("PATH", ""), "GATEWAY_LISTEN": listen},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert unknown.returncode == 1
        assert "NOT_FOUND" in unknown.stderr


def test_nothing_listening_is_unhealthy() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = run_probe(GATEWAY_LISTEN=f"0.0.0.0:{port}")
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr


def test_over_tls_with_the_issuing_ca(pki: Pki, tmp_path: Path) -> None:
    with run_gateway({**BASE, **pki.env()}, tmp_path) as running:
        env = {**pki.env(), "GATEWAY_LISTEN": running.target}
        with pytest.raises(ProbeError, match="GATEWAY_HEALTHCHECK_CA"):
            check(env)
        assert check({**env, "GATEWAY_HEALTHCHECK_CA": str(pki.ca_file)}) == "SERVING"
        # A CA that did not issue the gateway's certificate: the handshake fails.
        other = {**env, "GATEWAY_HEALTHCHECK_CA": str(pki.client_ca_file)}
        with pytest.raises(grpc.RpcError):
            check(other, timeout=5)
        result = run_probe(**env, GATEWAY_HEALTHCHECK_CA=str(pki.ca_file))
        assert result.returncode == 0, result.stderr


def test_with_client_certificates_required(pki: Pki, tmp_path: Path) -> None:
    with run_gateway({**BASE, **pki.mtls_env()}, tmp_path) as running:
        env = {
            **pki.mtls_env(),
            "GATEWAY_LISTEN": running.target,
            "GATEWAY_HEALTHCHECK_CA": str(pki.ca_file),
        }
        with pytest.raises(ProbeError, match="GATEWAY_HEALTHCHECK_CERT"):
            check(env)
        client = {
            "GATEWAY_HEALTHCHECK_CERT": str(pki.client_cert_file),
            "GATEWAY_HEALTHCHECK_KEY": str(pki.client_key_file),
        }
        assert check({**env, **client}) == "SERVING"
