"""grpcurl against the TLS port: -cacert, and -cert/-key for mutual TLS."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import run_gateway
from tests.service.test_tooling import GRPCURL
from tests.transport.pki import Pki

HEALTH = "grpc.health.v1.Health/Check"


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GRPCURL, *args], capture_output=True, text=True, timeout=60, check=False)


def test_grpcurl_with_ca_and_client_certificate(pki: Pki, tmp_path: Path) -> None:
    with run_gateway({"STORAGE_BACKEND": "memory", **pki.mtls_env()}, tmp_path) as running:
        mtls = ["-cacert", str(pki.ca_file), "-cert", str(pki.client_cert_file),
                "-key", str(pki.client_key_file)]  # fmt: skip
        answer = grpcurl(*mtls, running.target, HEALTH)
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout) == {"status": "SERVING"}
        listed = grpcurl(*mtls, running.target, "list")
        assert "storagegw.v1.StorageService" in listed.stdout.split()
        # Without the client certificate the handshake fails; so does plaintext.
        refused = grpcurl("-cacert", str(pki.ca_file), running.target, HEALTH)
        assert refused.returncode != 0
        assert "Failed to dial" in refused.stderr or "handshake" in refused.stderr
        assert grpcurl("-plaintext", running.target, HEALTH).returncode != 0


def test_grpcurl_with_the_ca_only(pki: Pki, tmp_path: Path) -> None:
    with run_gateway({"STORAGE_BACKEND": "memory", **pki.env()}, tmp_path) as running:
        answer = grpcurl("-cacert", str(pki.ca_file), running.target, HEALTH)
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout) == {"status": "SERVING"}
        # Another CA's server is not this one.
        untrusted = grpcurl("-cacert", str(pki.client_ca_file), running.target, HEALTH)
        assert untrusted.returncode != 0
