"""The transport settings: what a bad one says, and the refusal to serve the
network in the clear."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.config import ConfigError
from gateway.transport.settings import is_loopback
from tests.conftest import gateway_process, run_gateway
from tests.transport.pki import Pki

BASE = {"STORAGE_BACKEND": "memory"}


def load(**env: str) -> config_module.Config:
    return config_module.load({**BASE, **env})


def test_tls_files_are_read(pki: Pki) -> None:
    config = load(**pki.mtls_env())
    assert config.transport.tls is not None
    assert config.transport.tls.cert == pki.cert_file
    assert config.transport.tls.requires_client_cert
    assert not load(**pki.env()).transport.tls.requires_client_cert  # type: ignore[union-attr]
    assert config.public_base_url == "https://127.0.0.1:8080"
    assert load().public_base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("drop", "named"),
    [("GATEWAY_TLS_KEY", "GATEWAY_TLS_KEY"), ("GATEWAY_TLS_CERT", "GATEWAY_TLS_CERT")],
)
def test_cert_and_key_go_together(pki: Pki, drop: str, named: str) -> None:
    env = pki.env()
    del env[drop]
    with pytest.raises(ConfigError) as error:
        load(**env)
    assert error.value.setting == named
    assert "set both" in str(error.value)


def test_a_client_ca_needs_tls(pki: Pki) -> None:
    with pytest.raises(ConfigError) as error:
        load(GATEWAY_TLS_CLIENT_CA=str(pki.client_ca_file))
    assert error.value.setting == "GATEWAY_TLS_CLIENT_CA"


def test_unreadable_files_are_named(pki: Pki, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.pem")
    for setting in ("GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY", "GATEWAY_TLS_CLIENT_CA"):
        with pytest.raises(ConfigError) as error:
            load(**{**pki.mtls_env(), setting: missing})
        assert error.value.setting == setting
        assert f"cannot read {missing}" in str(error.value)


def test_files_that_are_not_what_they_should_be(pki: Pki, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a PEM file\n")
    for setting in ("GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY", "GATEWAY_TLS_CLIENT_CA"):
        with pytest.raises(ConfigError) as error:
            load(**{**pki.mtls_env(), setting: str(junk)})
        assert error.value.setting == setting
    # A key that is not the certificate's.
    with pytest.raises(ConfigError) as error:
        load(**{**pki.env(), "GATEWAY_TLS_KEY": str(pki.client_key_file)})
    assert error.value.setting == "GATEWAY_TLS_KEY"
    assert "not the key of" in str(error.value)


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:1", True), ("127.3.4.5:1", True), ("[::1]:1", True), ("localhost:1", True),
        ("0.0.0.0:1", False), ("[::]:1", False), (":1", False), ("10.0.0.7:1", False),
        ("gateway.internal:1", False),
    ],
)  # fmt: skip
def test_loopback_addresses(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


@pytest.mark.parametrize("setting", ["GATEWAY_LISTEN", "GATEWAY_HTTP_LISTEN"])
def test_refuses_the_network_in_the_clear(setting: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(**{setting: "0.0.0.0:0"})
    message = str(error.value)
    assert error.value.setting == setting
    for named in ("GATEWAY_TLS_CERT", "GATEWAY_JWKS", "GATEWAY_ALLOW_INSECURE=1"):
        assert named in message


def test_tls_or_authentication_lifts_the_refusal(pki: Pki, tmp_path: Path) -> None:
    exposed = {"GATEWAY_LISTEN": "0.0.0.0:0", "GATEWAY_HTTP_LISTEN": "0.0.0.0:0"}
    assert load(**exposed, **pki.env()).transport.insecure_listens == ()
    jwt = {
        "GATEWAY_JWKS": "https://idp.example/jwks.json",
        "GATEWAY_JWT_ISSUER": "https://idp.example",
        "GATEWAY_JWT_AUDIENCE": "storagegw",
    }
    assert load(**exposed, **jwt).transport.tls is None
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[[api_keys]]\nprincipal = "ci"\nsha256 = "{"0" * 64}"\n')
    assert load(**exposed, GATEWAY_POLICY=str(policy)).access.authenticates


def test_allow_insecure_must_be_0_or_1() -> None:
    with pytest.raises(ConfigError) as error:
        load(GATEWAY_LISTEN="0.0.0.0:0", GATEWAY_ALLOW_INSECURE="yes")
    assert error.value.setting == "GATEWAY_ALLOW_INSECURE"


def test_allow_insecure_starts_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = {**BASE, "GATEWAY_LISTEN": "0.0.0.0:0", "GATEWAY_ALLOW_INSECURE": "1"}
    with caplog.at_level(logging.WARNING, logger="storagegw"), run_gateway(env, tmp_path):
        pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("GATEWAY_LISTEN=0.0.0.0:0" in w and "in the clear" in w for w in warnings), warnings
    assert not any("GATEWAY_HTTP_LISTEN" in w for w in warnings)  # that one is on loopback


def test_the_process_refuses_and_names_the_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--listen", "0.0.0.0:0", "--http-listen", "0.0.0.0:0"],
        env={"PATH": "/usr/bin:/bin", "STORAGE_BASE_PATH": str(tmp_path)},
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "GATEWAY_LISTEN and GATEWAY_HTTP_LISTEN" in result.stderr
    assert "GATEWAY_ALLOW_INSECURE=1" in result.stderr


def test_the_process_with_allow_insecure_warns_at_start(tmp_path: Path) -> None:
    with gateway_process(
        tmp_path, GATEWAY_HTTP_LISTEN="0.0.0.0:0", GATEWAY_ALLOW_INSECURE="1"
    ) as running:
        assert running.process.poll() is None
    records = [json.loads(line) for line in running.log_lines]
    assert any(
        r["level"] == "warning" and "GATEWAY_HTTP_LISTEN=0.0.0.0:0" in r["message"] for r in records
    ), records


def test_make_runs_defaults_start_as_before(tmp_path: Path) -> None:
    # No TLS, loopback: no refusal, no warning.
    config = config_module.load({"STORAGE_BASE_PATH": str(tmp_path)})
    assert config.transport.tls is None
    assert config.transport.insecure_listens == ()
