"""The GCS driver's lifecycle rules in the bucket's own lifecycle
configuration: Delete after an age, for objects whose name starts with the
driver's prefix and the rule's.

GCS rules have no id, and the operator's rules share the bucket's one
configuration. So each rule the gateway installs names, beside its prefix,
a second prefix that no object can have (under the reserved `.storagegw/`
segment, `.storagegw/lifecycle/<rule id>`): matchesPrefix is any of them,
so it changes nothing of what the rule deletes, and it marks the rule as
the gateway's. install() rewrites those and keeps every other rule.

GCS expresses expiry only: a transition is S3's (a configuration error
elsewhere), and unfinished uploads are the gateway's resumable sessions,
which its cleanup aborts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from gateway.backends.gcs.common import GcsContext
from gateway.domain.keys import RESERVED_SEGMENT
from gateway.domain.lifecycle import DAY, LifecycleRule, StoreRule

MARK = f"{RESERVED_SEGMENT}/lifecycle/"


def gcs_rule(driver_prefix: str, rule: LifecycleRule) -> dict[str, Any]:
    assert rule.expire_after is not None
    return {
        "action": {"type": "Delete"},
        "condition": {
            "age": int(rule.expire_after // DAY),
            "matchesPrefix": [driver_prefix + rule.prefix, f"{driver_prefix}{MARK}{rule.id}"],
        },
    }


def _mark_of(driver_prefix: str, rule: Mapping[str, Any]) -> str | None:
    """The gateway's rule id a reported rule carries; None: not the gateway's."""
    for prefix in (rule.get("condition") or {}).get("matchesPrefix") or []:
        if str(prefix).startswith(driver_prefix + MARK):
            return str(prefix)[len(driver_prefix + MARK) :]
    return None


def _describe(rule: Mapping[str, Any]) -> str:
    action = rule.get("action") or {}
    condition = rule.get("condition") or {}
    what = str(action.get("type", ""))
    if what == "SetStorageClass":
        what = f"to {action.get('storageClass')}"
    elif what == "Delete":
        what = "expire"
    conditions = ", ".join(f"{k}={v}" for k, v in condition.items() if k != "matchesPrefix")
    return f"{what} when {conditions}" if conditions else what


class GcsLifecycle:
    """LifecycleInstaller of a GCS backend."""

    def __init__(self, context: Callable[[], Awaitable[GcsContext]]) -> None:
        self._context = context

    def expresses(self, rule: LifecycleRule) -> bool:
        return (
            rule.whole_days()
            and rule.expire_after is not None
            and rule.transition_after is None
            and rule.abort_incomplete_uploads_after is None
            and bool(rule.prefix)
        )

    async def _rules(self, ctx: GcsContext) -> tuple[Any, list[dict[str, Any]]]:
        """The bucket as read (its metageneration), and its rules."""
        bucket = ctx.client.bucket(ctx.bucket_name)
        with ctx.errors(op="buckets.get"):
            await ctx.run(bucket.reload, retry=ctx.retry)
        return bucket, [dict(rule) for rule in bucket.lifecycle_rules]

    async def install(self, rules: Sequence[LifecycleRule]) -> bool:
        ctx = await self._context()
        bucket, current = await self._rules(ctx)
        kept = [rule for rule in current if _mark_of(ctx.prefix, rule) is None]
        ours = [gcs_rule(ctx.prefix, rule) for rule in rules]
        if [rule for rule in current if rule not in kept] == ours:
            return False
        bucket.lifecycle_rules = kept + ours
        with ctx.errors(op="buckets.patch"):
            # Only over the configuration read: an operator's change meanwhile
            # fails this (412) rather than being lost.
            await ctx.run(
                bucket.patch, if_metageneration_match=bucket.metageneration, retry=ctx.retry
            )
        return True

    async def installed(self) -> list[StoreRule]:
        ctx = await self._context()
        _, current = await self._rules(ctx)
        found = []
        for index, rule in enumerate(current):
            mark = _mark_of(ctx.prefix, rule)
            prefixes = (rule.get("condition") or {}).get("matchesPrefix") or [""]
            shown = [p for p in prefixes if not str(p).startswith(ctx.prefix + MARK)]
            found.append(
                StoreRule(
                    f"storagegw:{mark}" if mark is not None else f"#{index + 1}",
                    ",".join(map(str, shown)),
                    _describe(rule),
                    mark is not None,
                    gateway_id=mark or "",
                )
            )
        return found
