"""Who may do what: the policy file, evaluated in one place, at the core's
door (PolicyGuard runs in Buckets.open before any driver call).

A grant names principals or groups, actions, buckets and key prefixes;
anything no grant allows is denied. Prefixes may be templated from the
identity ({principal}, {claims.NAME}) so one grant confines every caller to
its own space.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from gateway.access.api_keys import ApiKeys, parse_api_keys
from gateway.core.buckets import Action, Target
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.identity import Principal
from gateway.domain.principal_match import ANY, names_caller
from gateway.domain.settings import ConfigError

SETTING = "GATEWAY_POLICY"
# The methods a signed URL may allow, and the action its use needs.
SIGN_METHODS: Mapping[str, Action] = MappingProxyType(
    {"GET": Action.READ, "HEAD": Action.READ, "PUT": Action.WRITE, "POST": Action.WRITE}
)
ACTIONS = frozenset({a.value for a in Action} | {f"sign:{m}" for m in SIGN_METHODS})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CLAIM_NAME = re.compile(r"[A-Za-z0-9_-]+")
_GRANT_FIELDS = frozenset({"principals", "groups", "actions", "buckets", "prefixes"})


@dataclass(frozen=True, slots=True)
class Prefix:
    """A key prefix, literal or templated: alternating literal text and
    placeholders ("principal" or "claims.NAME")."""

    parts: tuple[str, ...]  # literal, placeholder, literal, ... (odd length)

    @classmethod
    def parse(cls, text: str) -> Prefix:
        """Raises ValueError for a placeholder other than {principal} or
        {claims.NAME}, or a stray brace."""
        parts: list[str] = []
        position = 0
        for match in _PLACEHOLDER.finditer(text):
            parts.append(text[position : match.start()])
            name = match.group(1)
            claim = name.removeprefix("claims.")
            if name != "principal" and not (claim != name and _CLAIM_NAME.fullmatch(claim)):
                raise ValueError(f"{{{name}}} is not {{principal}} or {{claims.NAME}}")
            parts.append(name)
            position = match.end()
        parts.append(text[position:])
        if any("{" in literal or "}" in literal for literal in parts[::2]):
            raise ValueError("has an unmatched brace")
        return cls(tuple(parts))

    def expand(self, principal: Principal) -> str | None:
        """The prefix for this principal, or None when a value it needs is
        missing or could step out of its place (empty, not a string, with a
        "/", "." or ".."): such a prefix matches nothing."""
        out = [self.parts[0]]
        for index in range(1, len(self.parts), 2):
            name = self.parts[index]
            value = (
                principal.id
                if name == "principal"
                else principal.claims.get(name.removeprefix("claims."))
            )
            if not isinstance(value, str) or value in ("", ".", "..") or "/" in value:
                return None
            out.append(value)
            out.append(self.parts[index + 1])
        return "".join(out)


@dataclass(frozen=True, slots=True)
class Grant:
    principals: frozenset[str]
    groups: frozenset[str]
    actions: frozenset[str]  # Action values, and "sign:GET"-style per-method signing
    buckets: frozenset[str]
    prefixes: tuple[Prefix, ...] = (Prefix(("",)),)

    def covers(self, principal: Principal, groups: frozenset[str], bucket: str) -> bool:
        """Whether this grant speaks of this caller and this bucket."""
        return names_caller(self.principals, self.groups, principal, groups) and (
            ANY in self.buckets or bucket in self.buckets
        )

    def allows_key(self, principal: Principal, key: str) -> bool:
        """Whether the key (for LIST, the prefix) lies inside one of the
        grant's prefixes, expanded for this principal."""
        for prefix in self.prefixes:
            expanded = prefix.expand(principal)
            if expanded is not None and key.startswith(expanded):
                return True
        return False


@dataclass(frozen=True, slots=True)
class Policy:
    grants: tuple[Grant, ...] = ()
    # Extra groups by principal id, from the [groups] table.
    members: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    api_keys: ApiKeys = field(default_factory=ApiKeys)
    source: str = "policy"

    @classmethod
    def load(cls, path: Path) -> Policy:
        """The policy in a TOML file; ConfigError (GATEWAY_POLICY) naming the
        file and the entry for anything wrong."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(SETTING, f"cannot read {path}: {error.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(SETTING, f"{path} is not valid TOML: {error}") from None
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: Mapping[str, object], source: str = "policy") -> Policy:
        unknown = set(data) - {"groups", "api_keys", "grants"}
        if unknown:
            raise ConfigError(
                SETTING,
                f"{source}: unknown tables {', '.join(sorted(unknown))} "
                "(expected [groups], [[api_keys]], [[grants]])",
            )
        grants = data.get("grants", [])
        if not isinstance(grants, list):
            raise ConfigError(SETTING, f"{source}: grants must be an array of tables ([[grants]])")
        return cls(
            grants=tuple(_parse_grant(source, index, grant) for index, grant in enumerate(grants)),
            members=_parse_members(source, data.get("groups", {})),
            api_keys=parse_api_keys(SETTING, source, data.get("api_keys", [])),
            source=source,
        )

    def groups_of(self, principal: Principal) -> frozenset[str]:
        """The principal's own groups and those the [groups] table gives it."""
        return principal.groups | self.members.get(principal.id, frozenset())

    def allows(
        self, principal: Principal, action: Action, bucket: str, key: str, scope: str = ""
    ) -> bool:
        """Whether some grant allows the action on the key (for LIST, the
        prefix) of the bucket. SIGN with a method scope ("GET", "PUT"...)
        needs "sign" or "sign:METHOD", and also the action a URL for that
        method grants (read for GET/HEAD, write for PUT/POST)."""
        if action is Action.SIGN and scope:
            method = scope.removeprefix("sign:").upper()
            granted = SIGN_METHODS.get(method)
            return (
                granted is not None
                and self._allows(principal, ("sign", f"sign:{method}"), bucket, key)
                and self._allows(principal, (granted.value,), bucket, key)
            )
        return self._allows(principal, (action.value,), bucket, key)

    def _allows(
        self, principal: Principal, actions: tuple[str, ...], bucket: str, key: str
    ) -> bool:
        groups = self.groups_of(principal)
        return any(
            not grant.actions.isdisjoint(actions)
            and grant.covers(principal, groups, bucket)
            and grant.allows_key(principal, key)
            for grant in self.grants
        )


class PolicyGuard:
    """The policy as a guard of Buckets.open: ACCESS_DENIED for what no
    grant allows, before any driver call, so a refusal never tells whether
    the object exists."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def check(self, target: Target) -> None:
        principal = target.principal
        if self.policy.allows(principal, target.action, target.bucket, target.key, target.scope):
            return
        what = target.action.value
        if target.action is Action.SIGN and target.scope:
            what = f"sign {target.scope.upper()} URLs for"
        where = f"prefix {target.key!r}" if target.action is Action.LIST else repr(target.key)
        raise GatewayError(
            Reason.ACCESS_DENIED,
            f"{principal.id!r} may not {what} {where} in bucket {target.bucket!r}: "
            "no grant of the policy allows it",
            action=target.action.value,
            bucket=target.bucket,
            principal=principal.id,
        )


def _strings(where: str, name: str, value: object, *, allow_empty: bool = False) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(SETTING, f"{where}: {name} must be a list of strings")
    if not value and not allow_empty:
        raise ConfigError(SETTING, f"{where}: {name} is empty")
    return value


def _parse_grant(source: str, index: int, grant: object) -> Grant:
    where = f"{source}: grants[{index}]"
    if not isinstance(grant, Mapping):
        raise ConfigError(SETTING, f"{where} must be a table")
    unknown = set(grant) - _GRANT_FIELDS
    if unknown:
        raise ConfigError(
            SETTING,
            f"{where} has unknown fields {', '.join(sorted(unknown))} "
            f"(expected {', '.join(sorted(_GRANT_FIELDS))})",
        )
    principals = _strings(where, "principals", grant.get("principals", []), allow_empty=True)
    groups = _strings(where, "groups", grant.get("groups", []), allow_empty=True)
    if not principals and not groups:
        raise ConfigError(SETTING, f"{where} names no principals and no groups")
    actions = _strings(where, "actions", grant.get("actions", []))
    for action in actions:
        if action not in ACTIONS:
            raise ConfigError(
                SETTING, f"{where}: unknown action {action!r} (one of {', '.join(sorted(ACTIONS))})"
            )
    buckets = _strings(where, "buckets", grant.get("buckets", []))
    prefixes: list[Prefix] = []
    for text in _strings(where, "prefixes", grant.get("prefixes", [""])):
        try:
            prefixes.append(Prefix.parse(text))
        except ValueError as error:
            raise ConfigError(SETTING, f"{where}: prefix {text!r} {error}") from None
    return Grant(
        frozenset(principals), frozenset(groups), frozenset(actions), frozenset(buckets),
        tuple(prefixes),
    )  # fmt: skip


def _parse_members(source: str, table: object) -> Mapping[str, frozenset[str]]:
    """[groups] (group -> principal ids) turned around: principal id -> groups."""
    if not isinstance(table, Mapping):
        raise ConfigError(SETTING, f"{source}: groups must be a table of group = [principal ids]")
    members: dict[str, set[str]] = {}
    for group, principals in table.items():
        for principal in _strings(f"{source}: groups.{group}", "members", principals):
            members.setdefault(principal, set()).add(group)
    return MappingProxyType({name: frozenset(groups) for name, groups in members.items()})
