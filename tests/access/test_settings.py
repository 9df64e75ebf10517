"""The access settings from the environment: defaults, what turns
authentication on, and a ConfigError naming the setting for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.access.settings import load_access_settings
from gateway.domain.settings import ConfigError

JWT_ENV = {
    "GATEWAY_JWKS": "https://idp.example.com/.well-known/jwks.json",
    "GATEWAY_JWT_ISSUER": "https://idp.example.com",
    "GATEWAY_JWT_AUDIENCE": "storagegw",
}
KEY_HASH = "a" * 64


def test_nothing_set_means_no_authentication_and_reflection_on() -> None:
    settings = load_access_settings({}, None)

    assert not settings.authenticates
    assert settings.jwt is None
    assert settings.policy is None
    assert not settings.mtls
    assert settings.reflection


def test_jwt_settings_and_their_defaults() -> None:
    settings = load_access_settings(JWT_ENV, None)

    assert settings.authenticates
    assert settings.jwt is not None
    assert settings.jwt.issuer == "https://idp.example.com"
    assert settings.jwt.audience == "storagegw"
    assert settings.jwt.algorithms == ("RS256", "ES256", "EdDSA")
    assert settings.jwt.groups_claim == "groups"
    assert settings.jwt.leeway == 30


def test_jwt_options() -> None:
    env = {
        **JWT_ENV,
        "GATEWAY_JWT_ALGORITHMS": "ES384, PS256",
        "GATEWAY_JWT_GROUPS_CLAIM": "roles",
        "GATEWAY_JWT_LEEWAY": "0",
    }

    jwt = load_access_settings(env, None).jwt

    assert jwt is not None
    assert (jwt.algorithms, jwt.groups_claim, jwt.leeway) == (("ES384", "PS256"), "roles", 0)


@pytest.mark.parametrize("algorithms", ["none", "RS256,HS256", "HS512", "NONE"])
def test_none_and_hmac_algorithms_are_refused(algorithms: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_access_settings({**JWT_ENV, "GATEWAY_JWT_ALGORITHMS": algorithms}, None)

    assert caught.value.setting == "GATEWAY_JWT_ALGORITHMS"


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({**JWT_ENV, "GATEWAY_JWT_ISSUER": ""}, "GATEWAY_JWT_ISSUER"),
        ({**JWT_ENV, "GATEWAY_JWT_AUDIENCE": ""}, "GATEWAY_JWT_AUDIENCE"),
        ({"GATEWAY_JWT_AUDIENCE": "x"}, "GATEWAY_JWT_AUDIENCE"),
        ({**JWT_ENV, "GATEWAY_JWKS": "http://idp.example.com/jwks"}, "GATEWAY_JWKS"),
        ({**JWT_ENV, "GATEWAY_JWKS": "ftp://idp.example.com/jwks"}, "GATEWAY_JWKS"),
        ({**JWT_ENV, "GATEWAY_JWKS": "/no/such/jwks.json"}, "GATEWAY_JWKS"),
        ({**JWT_ENV, "GATEWAY_JWT_ALGORITHMS": "RS257"}, "GATEWAY_JWT_ALGORITHMS"),
        ({**JWT_ENV, "GATEWAY_JWT_LEEWAY": "soon"}, "GATEWAY_JWT_LEEWAY"),
        ({"GATEWAY_REFLECTION": "maybe"}, "GATEWAY_REFLECTION"),
        ({"GATEWAY_POLICY": "/no/such/policy.toml"}, "GATEWAY_POLICY"),
    ],
)
def test_a_bad_value_names_its_setting(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_access_settings(env, None)

    assert caught.value.setting == setting


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_plain_http_jwks_is_allowed_on_loopback(host: str) -> None:
    settings = load_access_settings({**JWT_ENV, "GATEWAY_JWKS": f"http://{host}:8080/j"}, None)

    assert settings.jwt is not None
    assert settings.jwt.jwks_is_url


def test_reflection_off() -> None:
    assert not load_access_settings({"GATEWAY_REFLECTION": "off"}, None).reflection


def test_a_client_ca_turns_mtls_and_authentication_on(tmp_path: Path) -> None:
    settings = load_access_settings({"GATEWAY_TLS_CLIENT_CA": str(tmp_path / "ca.pem")}, None)

    assert settings.mtls
    assert settings.authenticates


def test_policy_toml_beside_the_config_file_is_found(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(
        f'[[api_keys]]\nprincipal = "ci"\nsha256 = "{KEY_HASH}"\n'
    )

    settings = load_access_settings({}, tmp_path / "gateway.toml")

    assert settings.policy_file == tmp_path / "policy.toml"
    assert settings.api_keys
    assert settings.authenticates


def test_a_policy_without_api_keys_does_not_turn_authentication_on(tmp_path: Path) -> None:
    policy = tmp_path / "rules.toml"
    policy.write_text('[[grants]]\nprincipals = ["*"]\nactions = ["read"]\nbuckets = ["*"]\n')

    settings = load_access_settings({"GATEWAY_POLICY": str(policy)}, tmp_path / "gateway.toml")

    assert settings.policy is not None
    assert settings.policy_file == policy
    assert not settings.authenticates


def test_without_policy_file_beside_the_config_there_is_no_policy(tmp_path: Path) -> None:
    assert load_access_settings({}, tmp_path / "gateway.toml").policy is None
