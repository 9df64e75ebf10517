"""Policy.allows against a small reference evaluator written here, on random
principals, groups, grants, actions, scopes, buckets and keys."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.access.policy import Policy
from gateway.core.buckets import Action
from gateway.domain.identity import Principal, Proof

IDS = ["alice", "bob", "bob/x", ".", "..", "spiffe://corp/ns/a/sa/b"]
GROUPS = ["admins", "ci", "finance"]
BUCKETS = ["tenants", "media", "shared"]
TEAMS: list[object] = ["red", "blue", "", "red/x", "..", 7, None]
PREFIXES = ["", "tenants/", "tenants/{principal}/", "{claims.team}/", "pub/{principal}-",
            "tenants/{principal}/{claims.team}/", "red/"]  # fmt: skip
ACTION_NAMES = ["read", "write", "delete", "list", "sign", "admin",
                "sign:GET", "sign:PUT", "sign:POST", "sign:HEAD"]  # fmt: skip
SCOPES = ["", "GET", "PUT", "POST", "HEAD", "DELETE"]
KEY_PARTS = ["tenants", "alice", "bob", "x", "red", "blue", "pub", "..", ".", "svc-billing"]


def some(elements: list[Any], min_size: int = 0) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(elements), min_size=min_size, max_size=3, unique=True)


@st.composite
def grants_near(
    draw: st.DrawFn, principal: Principal, action: Action, bucket: str, template: str
) -> dict[str, list[str]]:
    """A grant, as the TOML file has it, that often speaks of this caller,
    action, bucket and prefix template (so that most examples turn on the
    details: a template's values, the sign scopes, "*")."""

    def pick(near: str, others: list[str], min_size: int = 0) -> list[str]:
        picked = draw(some(others, min_size))
        if draw(st.booleans()) and near not in picked:
            picked.append(near)
        return picked

    principals = pick(principal.id, [*IDS, "*"])
    groups = draw(some(GROUPS))
    if not principals and not groups:
        principals = ["*"]
    return {
        "principals": principals,
        "groups": groups,
        "actions": pick(action.value, ACTION_NAMES, min_size=1),
        "buckets": pick(bucket, [*BUCKETS, "*"], min_size=1),
        "prefixes": pick(template, PREFIXES, min_size=1),
    }


other_keys = st.one_of(
    st.lists(st.sampled_from(KEY_PARTS), max_size=4).map("/".join),
    st.lists(st.sampled_from(KEY_PARTS), min_size=1, max_size=3).map(lambda p: "/".join(p) + "/"),
)


@st.composite
def keys_near(draw: st.DrawFn, principal: Principal, template: str) -> str:
    """A key, most often one made from a prefix template filled in with the
    principal's raw values (slashes and dots included), so that templates
    matter in most examples."""
    if draw(st.integers(0, 3)) == 0:
        return draw(other_keys)
    text = template
    text = text.replace("{principal}", principal.id)
    text = text.replace("{claims.team}", str(principal.claims.get("team", "")))
    if draw(st.booleans()):  # a key inside the prefix, or one cut short of it
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    return text + draw(st.sampled_from(["", "f", "x/y", "/"]))


@st.composite
def principals(draw: st.DrawFn) -> Principal:
    team = draw(st.sampled_from(TEAMS))
    claims = {} if team is None else {"team": team}
    proof = draw(st.sampled_from([Proof.JWT, Proof.MTLS, Proof.API_KEY, Proof.NONE]))
    return Principal(
        draw(st.sampled_from(IDS)), proof, frozenset(draw(some(GROUPS))), MappingProxyType(claims)
    )


# --- the reference: the spec's rules, spelt out with loops ---------------------------


def reference_groups(principal: Principal, table: dict[str, list[str]]) -> set[str]:
    groups = set(principal.groups)
    for group, members in table.items():
        if principal.id in members:
            groups.add(group)
    return groups


def safe(value: object) -> bool:
    return isinstance(value, str) and value not in ("", ".", "..") and "/" not in value


def reference_expand(template: str, principal: Principal) -> str | None:
    out = ""
    rest = template
    while "{" in rest:
        before, _, after = rest.partition("{")
        name, _, rest = after.partition("}")
        if name == "principal":
            value: object = principal.id
        else:
            value = principal.claims.get(name[len("claims.") :])
        if not safe(value):
            return None
        out += before + str(value)
    return out + rest


def reference_one(
    policy: dict[str, Any], principal: Principal, wanted: set[str], bucket: str, key: str
) -> bool:
    groups = reference_groups(principal, policy["groups"])
    for grant in policy["grants"]:
        who = principal.id in grant["principals"] or bool(groups & set(grant["groups"]))
        if "*" in grant["principals"] and principal.proof is not Proof.NONE:
            who = True
        if not who:
            continue
        if not wanted & set(grant["actions"]):
            continue
        if bucket not in grant["buckets"] and "*" not in grant["buckets"]:
            continue
        for template in grant["prefixes"]:
            prefix = reference_expand(template, principal)
            if prefix is not None and key[: len(prefix)] == prefix:
                return True
    return False


def reference(
    policy: dict[str, Any], principal: Principal, action: str, bucket: str, key: str, scope: str
) -> bool:
    if action == "sign" and scope:
        implied = {"GET": "read", "HEAD": "read", "PUT": "write", "POST": "write"}
        if scope not in implied:
            return False
        return reference_one(
            policy, principal, {"sign", "sign:" + scope}, bucket, key
        ) and reference_one(policy, principal, {implied[scope]}, bucket, key)
    return reference_one(policy, principal, {action}, bucket, key)


@settings(max_examples=1000, deadline=None)
@given(
    table=st.dictionaries(st.sampled_from(GROUPS), some(IDS, min_size=1), max_size=2),
    principal=principals(),
    action=st.sampled_from(list(Action)),
    scope=st.sampled_from(SCOPES),
    bucket=st.sampled_from(BUCKETS),
    data=st.data(),
)
def test_allows_equals_the_reference(
    table: dict[str, list[str]],
    principal: Principal,
    action: Action,
    scope: str,
    bucket: str,
    data: st.DataObject,
) -> None:
    template = data.draw(st.sampled_from(PREFIXES), "template")
    near = grants_near(principal, action, bucket, template)
    grants = data.draw(st.lists(near, max_size=4), "grants")
    key = data.draw(keys_near(principal, template), label="key")
    document: dict[str, Any] = {"grants": grants, "groups": table}
    policy = Policy.parse(document)
    scope = scope if action is Action.SIGN else ""

    assert policy.allows(principal, action, bucket, key, scope) == reference(
        document, principal, action.value, bucket, key, scope
    )
