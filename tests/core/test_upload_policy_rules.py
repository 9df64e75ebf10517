"""An upload policy's per-principal rules on their own: reading
[[buckets.NAME.upload_policy.rules]] with its errors, and which policy a
caller gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.domain.identity import ANONYMOUS, Principal, Proof
from gateway.domain.settings import ConfigError
from gateway.domain.upload_policy import UploadPolicy

BUCKET = "allowed_types = ['text/plain']\nmax_size = '1MiB'\n"
PHOTOGRAPHER = Principal("photographer", Proof.API_KEY)


def _load(tmp_path: Path, policy: str) -> UploadPolicy:
    path = tmp_path / "buckets.toml"
    path.write_text(f"[buckets.media]\nbackend = 'memory'\n[buckets.media.upload_policy]\n{policy}")
    env = {"GATEWAY_CONFIG": str(path), "STORAGE_BASE_PATH": str(tmp_path)}
    return config_module.load(env).upload_policies()["media"]


def _rule(body: str) -> str:
    return f"{BUCKET}[[buckets.media.upload_policy.rules]]\n{body}\n"


def test_a_rule_sets_its_fields_over_the_buckets(tmp_path: Path) -> None:
    policy = _load(
        tmp_path,
        _rule("principals = ['photographer']\nallowed_types = ['image/*']")
        + "[[buckets.media.upload_policy.rules]]\ngroups = ['clerks']\nmax_size = '2KiB'\n",
    )
    assert policy == UploadPolicy(max_size=1024 * 1024, allowed_types=("text/plain",))
    first, second = policy.rules
    assert (first.principals, first.groups) == (frozenset({"photographer"}), frozenset())
    assert first.policy == UploadPolicy(max_size=1024 * 1024, allowed_types=("image/*",))
    assert (second.principals, second.groups) == (frozenset(), frozenset({"clerks"}))
    assert second.policy == UploadPolicy(max_size=2048, allowed_types=("text/plain",))


def test_the_first_rule_naming_the_caller_decides(tmp_path: Path) -> None:
    policy = _load(
        tmp_path,
        _rule("principals = ['photographer']\nallowed_types = ['image/*']")
        + "[[buckets.media.upload_policy.rules]]\ngroups = ['clerks']\n"
        "allowed_types = ['application/pdf']\n"
        "[[buckets.media.upload_policy.rules]]\nprincipals = ['*']\nmax_size = 10\n",
    )
    image, pdf, anyone = (rule.policy for rule in policy.rules)
    assert policy.for_caller(PHOTOGRAPHER, frozenset({"clerks"})) is image
    clerk = Principal("clerk", Proof.JWT)
    assert policy.for_caller(clerk, frozenset({"clerks"})) is pdf
    assert policy.for_caller(clerk, frozenset()) is anyone
    # Authentication off: nobody a rule can name, not even "*" or a name.
    assert policy.for_caller(ANONYMOUS, frozenset({"clerks"})) is policy
    assert policy.for_caller(Principal("photographer", Proof.NONE), frozenset()) is policy
    # No rule: the bucket's own policy for everyone.
    plain = _load(tmp_path, BUCKET)
    assert plain.for_caller(PHOTOGRAPHER, frozenset()) is plain


RULES = "buckets.media.upload_policy.rules"


@pytest.mark.parametrize(
    ("policy", "setting", "says"),
    [
        (_rule("principals = ['a']\nmax_size = 'ten'"), f"{RULES}[0].max_size", "is not a size"),
        (
            _rule("principals = ['a']\nallowed_types = ['image']"),
            f"{RULES}[0].allowed_types",
            "is not a media type pattern",
        ),
        (_rule("principals = ['a']\nmin_size = '2MiB'"), f"{RULES}[0].max_size", "below min_size"),
        (_rule("principals = 'a'\nmax_size = 1"), f"{RULES}[0].principals", "must be a list"),
        (_rule("groups = ['']\nmax_size = 1"), f"{RULES}[0].groups", "must be a list of non-empty"),
        (_rule("max_size = 1"), f"{RULES}[0]", "names no principals and no groups"),
        (_rule("principals = ['a']"), f"{RULES}[0]", "sets none of"),
        (_rule("principals = ['a']\nmax_bytes = 1"), f"{RULES}[0]", "unknown setting(s) max_bytes"),
        (_rule("principals = ['a']\nrules = []"), f"{RULES}[0]", "unknown setting(s) rules"),
        (f"{BUCKET}rules = 'photographer'\n", RULES, "must be an array of tables"),
        (f"{BUCKET}rules = ['photographer']\n", f"{RULES}[0]", "must be a table"),
    ],
)
def test_a_bad_rule_is_named(tmp_path: Path, policy: str, setting: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, policy)
    assert raised.value.setting == setting
    assert says in str(raised.value)
