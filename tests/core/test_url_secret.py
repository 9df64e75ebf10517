"""STORAGE_URL_SECRET and the .url-secret file as lists of secrets that rotate
(gateway/core/url_secret.py): how a list is written, the key ids that name
its secrets, and the mistakes refused at start without echoing a secret."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.core.url_secret import SecretRing, key_id_of, load_or_create_secrets, parse_secrets
from gateway.domain.settings import ConfigError

A = "secret-A-0123456789abcdef"
B = "secret-B-0123456789abcdef"
C = "secret-C-0123456789abcdef"


def test_one_secret_is_taken_as_is() -> None:
    # Exactly as before lists existed: spaces included, nothing split off.
    ring = parse_secrets("  a secret with spaces  ")
    assert len(ring) == 1
    assert ring.current.secret == b"  a secret with spaces  "


def test_a_list_is_current_first_then_previous_ones() -> None:
    ring = parse_secrets(f"{B}, {A} ,{C}")
    assert [key.secret for key in ring] == [B.encode(), A.encode(), C.encode()]
    assert ring.current.secret == B.encode()
    assert ring.find(key_id_of(A.encode())) is not None
    assert ring.find(key_id_of(b"not-listed-0123456789")) is None


def test_key_id_is_eight_hex_digits_of_a_labelled_hash() -> None:
    expected = hashlib.sha256(b"storagegw-kid\x00" + A.encode()).hexdigest()[:8]
    assert key_id_of(A.encode()) == expected
    assert parse_secrets(A).current.key_id == expected
    assert key_id_of(A.encode()) != key_id_of(B.encode())


def test_repr_shows_key_ids_never_secrets() -> None:
    ring = parse_secrets(f"{B},{A}")
    shown = repr(ring) + repr(ring.current) + repr(list(ring))
    assert A not in shown
    assert B not in shown
    assert ring.current.key_id in shown


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param(f"{B},too-short", "secret 2 of 2 must be at least 16 bytes", id="short"),
        pytest.param("too-short", "the secret must be at least 16 bytes", id="short-alone"),
        pytest.param(f"{B},,{A}", "secret 2 of 3 is empty", id="empty"),
        pytest.param(f"{B},{A},", "secret 3 of 3 is empty", id="trailing-comma"),
        pytest.param(f"{B},{A}, {B}", "secret 3 has the key id", id="duplicate"),
    ],
)
def test_mistakes_are_config_errors_naming_the_setting(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_secrets(value)
    assert caught.value.setting == "STORAGE_URL_SECRET"
    assert problem in str(caught.value)
    for secret in (A, B, "too-short"):
        assert secret not in str(caught.value)
    # The same error stops the configuration from loading.
    with pytest.raises(ConfigError) as loading:
        config_module.load({"STORAGE_URL_SECRET": value})
    assert str(loading.value) == str(caught.value)


def test_configuration_keeps_the_list_for_the_server() -> None:
    config = config_module.load({"STORAGE_URL_SECRET": f"{B},{A}"})
    assert config.url_secret == f"{B},{A}"
    assert A not in repr(config)
    assert B not in repr(config)


def test_secret_file_may_list_previous_secrets(tmp_path: Path) -> None:
    current, previous = "ab" * 32, "cd" * 32
    (tmp_path / ".url-secret").write_text(f"{current}\n{previous}\n\n")
    (tmp_path / ".url-secret").chmod(0o600)
    ring = load_or_create_secrets(None, tmp_path)
    assert [key.secret for key in ring] == [bytes.fromhex(current), bytes.fromhex(previous)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("ab" * 32 + "\nnot hex\n", "is not hex", id="not-hex"),
        pytest.param("ab" * 32 + "\n" + "ab" * 4 + "\n", "must be at least 16", id="short"),
        pytest.param("ab" * 32 + "\n" + "ab" * 32 + "\n", "key id", id="duplicate"),
        pytest.param("\n", "no secret", id="empty"),
    ],
)
def test_bad_secret_file_is_refused_naming_the_file(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / ".url-secret"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem) as caught:
        load_or_create_secrets(None, tmp_path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)
    assert "ab" * 16 not in str(caught.value)


def test_a_ring_of_one_secret_from_bytes() -> None:
    ring = SecretRing.of(A.encode())
    assert SecretRing.of(ring) is ring
    assert [key.secret for key in ring] == [A.encode()]
