"""TLS, mutual TLS and bearer tokens from the `storagegw` command, in
subprocesses, from its flags and the environment (tests/client/auth_server.py
says what it saw)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.client.auth_server import Pki, Server
from tests.client.cli_command import CLI


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
