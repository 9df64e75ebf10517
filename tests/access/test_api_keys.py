"""Static API keys: stored as sha256 hex, looked up by hash."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from gateway.access.api_keys import ApiKey, ApiKeys, hash_key, new_key, parse_api_keys
from gateway.domain.settings import ConfigError


def test_the_right_key_is_found_and_a_wrong_one_is_not() -> None:
    key = new_key()
    keys = ApiKeys([ApiKey("ci-uploader", hash_key(key), frozenset({"ci"}))])

    found = keys.lookup(key)

    assert found is not None
    assert (found.principal, found.groups) == ("ci-uploader", {"ci"})
    assert keys.lookup(key + "x") is None
    assert keys.lookup(hash_key(key)) is None  # the hash itself is not a key
    assert keys.lookup("") is None


def test_new_keys_are_random_and_long() -> None:
    first, second = new_key(), new_key()

    assert first != second
    assert len(first) >= 40


@pytest.mark.parametrize(
    "entry",
    [
        {"principal": "ci", "sha256": "abc"},
        {"principal": "ci", "sha256": "g" * 64},
        {"principal": "ci", "sha256": "a" * 65},
        {"principal": "ci"},
        {"principal": "", "sha256": "a" * 64},
        {"principal": "ci", "sha256": "a" * 64, "groups": "ci"},
        {"principal": "ci", "sha256": "a" * 64, "key": "plain"},
    ],
    ids=["short", "not-hex", "long", "no-hash", "no-principal", "groups-string", "unknown"],
)
def test_a_bad_entry_is_a_config_error_naming_it(entry: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_api_keys("GATEWAY_POLICY", "policy.toml", [{"principal": "ok", "sha256": "b" * 64},
                                                         entry])  # fmt: skip

    assert caught.value.setting == "GATEWAY_POLICY"
    assert "policy.toml: api_keys[1]" in str(caught.value)


def test_upper_case_hex_is_accepted() -> None:
    key = new_key()

    keys = parse_api_keys(
        "GATEWAY_POLICY", "p", [{"principal": "a", "sha256": hash_key(key).upper()}]
    )

    assert keys.lookup(key) is not None


def test_the_same_hash_twice_is_refused() -> None:
    entry = {"principal": "a", "sha256": "c" * 64}

    with pytest.raises(ConfigError, match="twice"):
        parse_api_keys("GATEWAY_POLICY", "p", [entry, {**entry, "principal": "b"}])


def test_the_key_maker_prints_a_key_and_lines_that_accept_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.access.api_keys", "--principal", "ci-uploader",
         "--group", "ci"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    key_line, _, rest = result.stdout.partition("\n")
    key = key_line.rsplit(" ", 1)[1]
    toml = rest.split("policy file lines:\n", 1)[1]

    keys = parse_api_keys("GATEWAY_POLICY", "p", tomllib.loads(toml)["api_keys"])

    found = keys.lookup(key)
    assert found is not None
    assert (found.principal, found.groups) == ("ci-uploader", {"ci"})
    assert key not in toml
