"""GetLifecycle: a bucket's lifecycle rules in force, where each is
enforced, and what the store's own configuration holds.

An administrative call: the bucket is opened whole ("") as ADMIN at the
door, so the access policy grants or refuses it like any other.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.core.buckets import Action, Buckets
from gateway.core.lifecycle_plan import BucketLifecycle, Enforcement, installed_rules
from gateway.domain.lifecycle import LifecycleRule, StoreRule


class Where(enum.StrEnum):
    """Where a rule is enforced, as GetLifecycle reports it."""

    NATIVE = "native store"
    GATEWAY = "gateway task"
    # Meant for the store, which does not report it: the gateway's task
    # expires in its place (nothing enforces a transition then).
    FALLBACK = "gateway task (store does not report it)"


@dataclass(frozen=True, slots=True)
class RuleShown:
    rule: LifecycleRule
    where: Where
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LifecycleView:
    bucket: str
    rules: list[RuleShown] = field(default_factory=list)
    # Whether the store has a lifecycle configuration of its own.
    store_lifecycle: bool = False
    store_rules: list[StoreRule] = field(default_factory=list)
    # Why the store's configuration could not be read ("": it was).
    store_error: str = ""


async def get_lifecycle(
    buckets: Buckets, plans: Mapping[str, BucketLifecycle], bucket: str
) -> LifecycleView:
    target = buckets.open(bucket, "", Action.ADMIN)
    plan = plans.get(target.bucket, BucketLifecycle(target.bucket))
    store_rules, error = await installed_rules(target)
    fallback = plan.unreported(store_rules)
    shown = []
    for placed in plan.rules:
        if placed.enforcement is Enforcement.GATEWAY:
            shown.append(RuleShown(placed.rule, Where.GATEWAY, placed.reason))
        elif placed.rule.id in fallback:
            why = error or "not in the store's rules"
            shown.append(RuleShown(placed.rule, Where.FALLBACK, why))
        else:
            shown.append(RuleShown(placed.rule, Where.NATIVE))
    has_store_lifecycle = target.backend.capabilities.lifecycle is not None
    return LifecycleView(target.bucket, shown, has_store_lifecycle, store_rules, error)
