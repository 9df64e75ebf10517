"""The policy by example: tenant isolation, claims, deny by default, LIST
confinement, signing per method; the file's validation; the guard at the
core's door."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from gateway.access.policy import Policy, PolicyGuard
from gateway.backends.memory.backend import MemoryBackend
from gateway.core import calllog
from gateway.core.buckets import Action, Buckets
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.identity import ANONYMOUS, Principal, Proof
from gateway.domain.settings import ConfigError

POLICY = """
[groups]
admins = ["root"]

[[grants]]
principals = ["*"]
actions = ["read", "write", "delete", "list", "sign"]
buckets = ["tenants"]
prefixes = ["tenants/{principal}/"]

[[grants]]
principals = ["*"]
actions = ["read", "list"]
buckets = ["shared"]
prefixes = ["{claims.team}/"]

[[grants]]
principals = ["uploader"]
actions = ["sign:PUT", "write"]
buckets = ["media"]
prefixes = ["incoming/"]

[[grants]]
principals = ["reader"]
actions = ["read", "sign:GET"]
buckets = ["media"]

[[grants]]
groups = ["admins"]
actions = ["read", "write", "delete", "list", "sign", "admin"]
buckets = ["*"]
"""


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    path = tmp_path_factory.mktemp("policy") / "policy.toml"
    path.write_text(POLICY)
    return Policy.load(path)


def jwt(name: str, **claims: object) -> Principal:
    return Principal(name, Proof.JWT, claims=MappingProxyType(dict(claims)))


ALICE, BOB = jwt("alice", team="red"), jwt("bob", team="blue")


def test_each_tenant_reaches_only_its_own_space(policy: Policy) -> None:
    for action in (Action.READ, Action.WRITE, Action.DELETE):
        assert policy.allows(ALICE, action, "tenants", "tenants/alice/report.csv")
        assert not policy.allows(ALICE, action, "tenants", "tenants/bob/report.csv")
        assert not policy.allows(BOB, action, "tenants", "tenants/alice/report.csv")


def test_an_id_with_a_slash_cannot_reach_into_another_tenant(policy: Policy) -> None:
    sneaky = jwt("alice/x")

    assert not policy.allows(sneaky, Action.READ, "tenants", "tenants/alice/x/report.csv")
    assert not policy.allows(jwt(".."), Action.LIST, "tenants", "tenants/../")


def test_list_is_confined_to_the_allowed_prefix(policy: Policy) -> None:
    assert policy.allows(ALICE, Action.LIST, "tenants", "tenants/alice/")
    assert policy.allows(ALICE, Action.LIST, "tenants", "tenants/alice/2024/")
    assert not policy.allows(ALICE, Action.LIST, "tenants", "tenants/")
    assert not policy.allows(ALICE, Action.LIST, "tenants", "")
    assert not policy.allows(ALICE, Action.LIST, "tenants", "tenants/b")


def test_a_claim_templates_the_prefix(policy: Policy) -> None:
    assert policy.allows(ALICE, Action.READ, "shared", "red/plan.txt")
    assert not policy.allows(ALICE, Action.READ, "shared", "blue/plan.txt")
    assert not policy.allows(ALICE, Action.WRITE, "shared", "red/plan.txt")
    # No claim, a claim that is not a string, or one with a slash: nothing.
    assert not policy.allows(jwt("carol"), Action.READ, "shared", "/plan.txt")
    assert not policy.allows(jwt("dave", team=7), Action.READ, "shared", "7/plan.txt")
    assert not policy.allows(jwt("eve", team="red/x"), Action.READ, "shared", "red/x/plan.txt")


def test_deny_by_default(policy: Policy) -> None:
    assert not policy.allows(ALICE, Action.READ, "media", "a.txt")
    assert not policy.allows(ALICE, Action.ADMIN, "tenants", "tenants/alice/a.txt")
    assert not Policy().allows(ALICE, Action.READ, "tenants", "tenants/alice/a.txt")


def test_any_principal_means_any_authenticated_one(policy: Policy) -> None:
    anonymous_alice = Principal("alice", Proof.NONE)

    assert not policy.allows(ANONYMOUS, Action.READ, "tenants", "tenants/anonymous/a")
    assert not policy.allows(anonymous_alice, Action.READ, "tenants", "tenants/alice/a")


def test_groups_from_the_policy_and_from_the_token(policy: Policy) -> None:
    assert policy.allows(jwt("root"), Action.ADMIN, "media", "any/key")
    token_admin = Principal("zed", Proof.JWT, frozenset({"admins"}))
    assert policy.allows(token_admin, Action.DELETE, "tenants", "tenants/alice/a")


def test_signing_is_per_method_and_needs_the_action_the_url_grants(policy: Policy) -> None:
    uploader, reader = jwt("uploader"), jwt("reader")

    assert policy.allows(uploader, Action.SIGN, "media", "incoming/a.mp4", "PUT")
    assert not policy.allows(uploader, Action.SIGN, "media", "incoming/a.mp4", "GET")
    assert not policy.allows(uploader, Action.SIGN, "media", "published/a.mp4", "PUT")
    assert policy.allows(reader, Action.SIGN, "media", "published/a.mp4", "GET")
    # sign:GET is not sign:HEAD, and the reader may not write.
    assert not policy.allows(reader, Action.SIGN, "media", "published/a.mp4", "HEAD")
    assert not policy.allows(reader, Action.SIGN, "media", "published/a.mp4", "PUT")
    # "sign" covers every method, but still not beyond the principal's prefix.
    assert policy.allows(ALICE, Action.SIGN, "tenants", "tenants/alice/a", "POST")
    assert not policy.allows(ALICE, Action.SIGN, "tenants", "tenants/bob/a", "GET")


@pytest.mark.parametrize(
    ("grant", "problem"),
    [
        ('principals = ["a"]\nactions = ["raed"]\nbuckets = ["b"]', "unknown action 'raed'"),
        ('actions = ["read"]\nbuckets = ["b"]', "names no principals and no groups"),
        ('principals = ["a"]\nactions = []\nbuckets = ["b"]', "actions is empty"),
        ('principals = ["a"]\nactions = ["read"]', "buckets is empty"),
        ('principals = ["a"]\nactions = ["read"]\nbuckets = ["b"]\nprefixes = ["{user}/"]',
         "{user} is not"),
        ('principals = ["a"]\nactions = ["read"]\nbuckets = ["b"]\nprefixes = ["{claims.}/"]',
         "is not"),
        ('principals = ["a"]\nactions = ["read"]\nbuckets = ["b"]\nprefixes = ["x}/"]',
         "unmatched brace"),
        ('principals = ["a"]\nactions = ["read"]\nbuckets = ["b"]\nprefix = ["x/"]',
         "unknown fields prefix"),
    ],
)  # fmt: skip
def test_a_bad_grant_names_the_file_and_its_index(tmp_path: Path, grant: str, problem: str) -> None:
    path = tmp_path / "policy.toml"
    good = '[[grants]]\nprincipals = ["a"]\nactions = ["read"]\nbuckets = ["b"]\n'
    path.write_text(f"{good}\n[[grants]]\n{grant}\n")

    with pytest.raises(ConfigError) as caught:
        Policy.load(path)

    assert caught.value.setting == "GATEWAY_POLICY"
    assert f"{path}: grants[1]" in str(caught.value)
    assert problem in str(caught.value)


def test_a_file_that_is_not_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[[grants]\n")

    with pytest.raises(ConfigError, match="not valid TOML"):
        Policy.load(path)


# The guard tests are coroutines so that the call log they start lives in
# their task's context and not beyond the test.
async def test_the_guard_refuses_at_the_door_without_saying_whether_the_object_exists(
    policy: Policy,
) -> None:
    buckets = Buckets(
        {"tenants": MemoryBackend(), "media": MemoryBackend()}, "tenants", [PolicyGuard(policy)]
    )
    calllog.start("Head").principal = ALICE

    assert buckets.open("tenants", "tenants/alice/a", Action.READ).principal is ALICE
    with pytest.raises(GatewayError) as caught:
        buckets.open("tenants", "tenants/bob/missing", Action.READ)

    error = caught.value
    assert error.reason is Reason.ACCESS_DENIED
    assert error.metadata == {"action": "read", "bucket": "tenants", "principal": "alice"}
    assert "'alice' may not read 'tenants/bob/missing' in bucket 'tenants'" in error.message
    assert "not found" not in error.message
    assert "exist" not in error.message


async def test_the_guard_names_the_method_of_a_refused_signature(policy: Policy) -> None:
    buckets = Buckets({"media": MemoryBackend()}, "media", [PolicyGuard(policy)])
    calllog.start("SignUrl").principal = jwt("reader")

    with pytest.raises(GatewayError) as caught:
        buckets.open("media", "a.txt", Action.SIGN, scope="PUT")

    assert caught.value.reason is Reason.ACCESS_DENIED
    assert "sign PUT URLs" in caught.value.message
