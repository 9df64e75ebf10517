"""Lifecycle rules of a bucket, as its [[buckets.NAME.lifecycle]] tables
say them: expire the objects under a prefix N days after their last write,
move them to another storage class after N days (S3), abort the uploads
left unfinished after N days.

A rule holds ages in seconds (days from the file; the default abort rule
made from GATEWAY_STALE_UPLOAD_AGE may be any duration). Where each rule is
enforced (the store's own lifecycle configuration, or the gateway's task)
is decided later, by gateway/core/lifecycle_plan.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.domain.settings import ConfigError

DAY = 86400.0
# Fields a [[buckets.NAME.lifecycle]] table may hold.
RULE_FIELDS = (
    "id",
    "prefix",
    "expire_after",
    "transition_after",
    "storage_class",
    "abort_incomplete_uploads_after",
    "native",
)
# Drivers whose store can move objects between storage classes by rule.
TRANSITION_KINDS = frozenset({"s3"})
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_STORAGE_CLASS = re.compile(r"[A-Z0-9_]{1,64}")


@dataclass(frozen=True, slots=True)
class LifecycleRule:
    """One rule: what happens to the objects (and unfinished uploads) under
    prefix, each age in seconds (None: that action is not part of it)."""

    id: str
    prefix: str = ""
    expire_after: float | None = None
    transition_after: float | None = None
    storage_class: str = ""
    abort_incomplete_uploads_after: float | None = None
    # Install it in the store's own lifecycle configuration where the store
    # can express it (False: always the gateway's task).
    native: bool = True

    @property
    def acts_on_objects(self) -> bool:
        """Whether it expires or moves objects (not only aborts uploads)."""
        return self.expire_after is not None or self.transition_after is not None

    def whole_days(self) -> bool:
        """Whether every age is a whole number of days (what stores take)."""
        ages = (self.expire_after, self.transition_after, self.abort_incomplete_uploads_after)
        return all(age is None or age % DAY == 0 for age in ages)

    def describe(self) -> str:
        """The rule's actions in words ("expire after 30d; ...")."""
        parts = []
        if self.transition_after is not None:
            parts.append(f"to {self.storage_class} after {_age(self.transition_after)}")
        if self.expire_after is not None:
            parts.append(f"expire after {_age(self.expire_after)}")
        if self.abort_incomplete_uploads_after is not None:
            parts.append(
                f"abort incomplete uploads after {_age(self.abort_incomplete_uploads_after)}"
            )
        return "; ".join(parts)


def _age(seconds: float) -> str:
    if seconds % DAY == 0:
        return f"{int(seconds // DAY)}d"
    return f"{seconds:g}s"


def covers(prefix: str, other: str) -> bool:
    """Whether the keys under prefix and under other can meet (one prefix
    of the other)."""
    return prefix.startswith(other) or other.startswith(prefix)


def _days(setting: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(setting, f"must be a whole number of days, got {value!r}")
    if value < 1:
        raise ConfigError(setting, f"must be at least 1 day, got {value}")
    return value * DAY


def _text(setting: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(setting, f"must be a string, got {value!r}")
    return value


def parse_rule(setting: str, table: object, index: int, kind: str) -> LifecycleRule:
    """One [[buckets.NAME.lifecycle]] table (setting names it: every problem
    raises ConfigError naming the field); kind: the bucket's driver."""
    if not isinstance(table, Mapping):
        raise ConfigError(setting, "must be a table ([[buckets.NAME.lifecycle]])")
    unknown = set(table) - set(RULE_FIELDS)
    if unknown:
        raise ConfigError(setting, f"unknown setting(s) {', '.join(sorted(unknown))}")
    values: Mapping[str, Any] = table
    rule_id = _text(f"{setting}.id", values.get("id", f"rule-{index + 1}"))
    if not _ID.fullmatch(rule_id):
        raise ConfigError(f"{setting}.id", "must be 1 to 64 of A-Z a-z 0-9 _ . -")
    prefix = _text(f"{setting}.prefix", values.get("prefix", ""))
    native = values.get("native", True)
    if not isinstance(native, bool):
        raise ConfigError(f"{setting}.native", f"must be true or false, got {native!r}")

    def age(name: str) -> float | None:
        return None if name not in values else _days(f"{setting}.{name}", values[name])

    expire, transition = age("expire_after"), age("transition_after")
    abort = age("abort_incomplete_uploads_after")
    storage_class = _text(f"{setting}.storage_class", values.get("storage_class", ""))
    if transition is not None or storage_class:
        if kind not in TRANSITION_KINDS:
            raise ConfigError(
                f"{setting}.transition_after",
                f"a {kind} bucket has no storage classes to move objects to (S3 only)",
            )
        if transition is None or not storage_class:
            field = "storage_class" if transition is not None else "transition_after"
            raise ConfigError(
                f"{setting}.{field}", "transition_after and storage_class go together"
            )
        if not _STORAGE_CLASS.fullmatch(storage_class):
            raise ConfigError(f"{setting}.storage_class", f"{storage_class!r} is no storage class")
        if not native:
            raise ConfigError(f"{setting}.native", "a transition is only done by the store itself")
        if expire is not None and expire <= transition:
            raise ConfigError(f"{setting}.expire_after", "must be later than transition_after")
    if expire is None and transition is None and abort is None:
        raise ConfigError(
            setting,
            "says nothing to do: set expire_after, transition_after or "
            "abort_incomplete_uploads_after",
        )
    return LifecycleRule(rule_id, prefix, expire, transition, storage_class, abort, native)


def parse_lifecycle(setting: str, value: object, kind: str) -> tuple[LifecycleRule, ...]:
    """A bucket's [[buckets.NAME.lifecycle]] array (setting: buckets.NAME.lifecycle)."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ConfigError(setting, "must be an array of tables ([[buckets.NAME.lifecycle]])")
    rules = tuple(parse_rule(f"{setting}[{i}]", table, i, kind) for i, table in enumerate(value))
    check_overlaps(setting, rules)
    return rules


def check_overlaps(setting: str, rules: Sequence[LifecycleRule]) -> None:
    """Two rules may not share an id, nor do the same kind of thing to the
    same keys: which would win is not obvious (S3 picks the cheapest)."""
    for later, rule in enumerate(rules):
        for index, other in enumerate(rules[:later]):
            where = f"{setting}[{later}]"
            if rule.id == other.id:
                raise ConfigError(f"{where}.id", f"{rule.id!r} is the id of rule {index} too")
            if not covers(rule.prefix, other.prefix):
                continue
            for field in ("expire_after", "transition_after", "abort_incomplete_uploads_after"):
                if getattr(rule, field) is not None and getattr(other, field) is not None:
                    raise ConfigError(
                        f"{where}.prefix",
                        f"{rule.prefix!r} overlaps rule {index}'s {other.prefix!r}, and both "
                        f"set {field}",
                    )


@dataclass(frozen=True, slots=True)
class StoreRule:
    """A rule as the store reports it (its own lifecycle configuration).
    prefix: the store's, driver prefix included; managed: one the gateway
    installed (the others are the operator's, and left alone)."""

    id: str
    prefix: str
    description: str
    managed: bool
    enabled: bool = True
    # A managed rule's id in the gateway's configuration (LifecycleRule.id).
    gateway_id: str = ""
