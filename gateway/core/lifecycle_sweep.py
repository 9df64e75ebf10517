"""The gateway's lifecycle task: the objects under an expiry rule's prefix
whose last write is older than its age are deleted, for the rules the store
does not enforce itself (gateway/core/lifecycle_plan.py), and for the rules
meant for the store that it does not report (an emulator that takes the
configuration and drops it; one the gateway could not install).

The prefix is listed a page at a time (one page held), keys under the
gateway's reserved prefixes skipped. Each delete is pinned to the
generation listed (or, where a listing does not tell it, to the one a head
finds, after checking the age again), so an object written again meanwhile
survives. Safe on several replicas at once; the gateway runs it on its
first worker. `now` is a parameter: tests pass a later one; `dry_run`
lists and counts what would expire, and deletes nothing (`storagegw cleanup
--dry-run`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.core.bucket_walk import walk
from gateway.core.buckets import Action, Buckets, Target
from gateway.core.lifecycle_plan import (
    BucketLifecycle,
    Enforcement,
    installed_rules,
    reserved_prefixes,
)
from gateway.core.pinned_deletes import delete_older
from gateway.domain.clock import NS, nanoseconds
from gateway.domain.lifecycle import LifecycleRule
from gateway.domain.objects import ObjectMeta


@dataclass(slots=True)
class ExpiryCounts:
    expired: int = 0
    # The expired objects' bytes, as listed (in a dedup bucket the blobs
    # stay until its sweep finds them unreferenced).
    bytes: int = 0
    # Written again (or deleted) between the listing and the delete: kept.
    raced: int = 0


async def unreported(plan: BucketLifecycle, target: Target) -> frozenset[str]:
    """The ids of plan's native rules the store does not report (all of
    them when it cannot be asked)."""
    if not plan.native():
        return frozenset()
    store_rules, _ = await installed_rules(target)
    return plan.unreported(store_rules)


async def sweep_expiry(
    buckets: Buckets,
    plans: Mapping[str, BucketLifecycle],
    now: float | None = None,
    dry_run: bool = False,
) -> dict[str, ExpiryCounts]:
    """{bucket: counts} for every bucket with an expiry rule the gateway
    enforces. buckets should have no guards: the task acts for no caller.
    dry_run: the counts of what would expire, nothing deleted."""
    now_ns = nanoseconds(now)
    counts: dict[str, ExpiryCounts] = {}
    for name, plan in plans.items():
        target = buckets.open(name, "", Action.LIST)
        expiring = plan.expiring()
        if not expiring:
            continue
        fallback = await unreported(plan, target)
        rules = [
            placed.rule
            for placed in expiring
            if placed.enforcement is Enforcement.GATEWAY or placed.rule.id in fallback
        ]
        if not rules:
            continue
        counts[name] = found = ExpiryCounts()
        for rule in rules:
            await _expire_rule(target, rule, now_ns, found, dry_run)
    return counts


async def _expire_rule(
    target: Target, rule: LifecycleRule, now_ns: int, found: ExpiryCounts, dry_run: bool
) -> None:
    assert rule.expire_after is not None
    cutoff_ns = now_ns - int(rule.expire_after * NS)
    reserved = reserved_prefixes(target)
    async for meta in walk(target.backend, rule.prefix):
        if meta.update_time_ns < cutoff_ns and not meta.key.startswith(reserved):
            if dry_run:
                found.expired += 1
                found.bytes += meta.size
            else:
                await _expire(target, meta, cutoff_ns, found)


async def _expire(target: Target, listed: ObjectMeta, cutoff_ns: int, found: ExpiryCounts) -> None:
    # A listing that does not tell the generation (S3): a head does.
    generation = listed.generation or None
    if await delete_older(target.backend, listed.key, generation, cutoff_ns):
        found.expired += 1
        found.bytes += listed.size
    else:
        found.raced += 1
