"""The S3 driver's lifecycle rules in the bucket's own lifecycle
configuration (PutBucketLifecycleConfiguration).

A bucket has one lifecycle configuration, which the operator may use too,
and several gateway buckets may share an S3 bucket under different key
prefixes. So the gateway owns only the rules whose ID starts with
`storagegw:<the driver's key prefix>:`; install() rewrites those and keeps
every other rule as the store reports it. Each rule's prefix is the
driver's key prefix and the gateway's rule prefix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from gateway.backends.s3.common import S3_ERRORS, S3Context, error_code_of
from gateway.domain.lifecycle import DAY, LifecycleRule, StoreRule

ID_PREFIX = "storagegw:"
# What S3 answers GetBucketLifecycleConfiguration of a bucket with none.
_NO_CONFIGURATION = frozenset({"NoSuchLifecycleConfiguration", "NoSuchLifecycle"})


def rule_id(driver_prefix: str, rule: LifecycleRule) -> str:
    return f"{ID_PREFIX}{driver_prefix}:{rule.id}"


def s3_rule(driver_prefix: str, rule: LifecycleRule) -> dict[str, Any]:
    """The rule in S3's terms."""
    out: dict[str, Any] = {
        "ID": rule_id(driver_prefix, rule),
        "Filter": {"Prefix": driver_prefix + rule.prefix},
        "Status": "Enabled",
    }
    if rule.expire_after is not None:
        out["Expiration"] = {"Days": int(rule.expire_after // DAY)}
    if rule.transition_after is not None:
        days = int(rule.transition_after // DAY)
        out["Transitions"] = [{"Days": days, "StorageClass": rule.storage_class}]
    if rule.abort_incomplete_uploads_after is not None:
        days = int(rule.abort_incomplete_uploads_after // DAY)
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return out


def _prefix_of(rule: Mapping[str, Any]) -> str:
    """A reported rule's prefix, wherever the store put it (Filter.Prefix,
    Filter.And.Prefix, or the older top-level Prefix)."""
    found = rule.get("Filter") or {}
    if "And" in found:
        found = found["And"]
    return str(found.get("Prefix", rule.get("Prefix", "")))


def _essence(rule: Mapping[str, Any]) -> tuple[object, ...]:
    """What decides a rule, however the store spells it back."""
    transitions = tuple(
        (int(t.get("Days", 0)), str(t.get("StorageClass", ""))) for t in rule.get("Transitions", [])
    )
    expiration = rule.get("Expiration") or {}
    abort = rule.get("AbortIncompleteMultipartUpload") or {}
    return (
        str(rule.get("ID", "")),
        _prefix_of(rule),
        str(rule.get("Status", "")),
        expiration.get("Days"),
        transitions,
        abort.get("DaysAfterInitiation"),
    )


def describe(rule: Mapping[str, Any]) -> str:
    """A reported rule's actions in words."""
    parts = [
        f"to {t.get('StorageClass')} after {t.get('Days')}d" for t in rule.get("Transitions", [])
    ]
    expiration = rule.get("Expiration") or {}
    if "Days" in expiration:
        parts.append(f"expire after {expiration['Days']}d")
    elif expiration:
        parts.append("expire " + ", ".join(f"{k}={v}" for k, v in expiration.items()))
    if rule.get("NoncurrentVersionExpiration"):
        parts.append("expire noncurrent versions")
    abort = rule.get("AbortIncompleteMultipartUpload") or {}
    if "DaysAfterInitiation" in abort:
        parts.append(f"abort incomplete uploads after {abort['DaysAfterInitiation']}d")
    return "; ".join(parts) or "(no action the gateway knows)"


class S3Lifecycle:
    """LifecycleInstaller of an S3 backend."""

    def __init__(self, context: Callable[[], Awaitable[S3Context]]) -> None:
        self._context = context

    def expresses(self, rule: LifecycleRule) -> bool:
        return rule.whole_days()

    async def _rules(self, ctx: S3Context) -> list[dict[str, Any]]:
        try:
            response = await ctx.client.get_bucket_lifecycle_configuration(Bucket=ctx.bucket)
        except S3_ERRORS as error:
            if error_code_of(error) in _NO_CONFIGURATION:
                return []
            with ctx.errors(op="GetBucketLifecycleConfiguration"):
                raise
        return list(response.get("Rules", []))

    def _owned(self, ctx: S3Context, rule: Mapping[str, Any]) -> bool:
        return str(rule.get("ID", "")).startswith(f"{ID_PREFIX}{ctx.prefix}:")

    def _gateway_id(self, ctx: S3Context, rule: Mapping[str, Any]) -> str:
        owner = f"{ID_PREFIX}{ctx.prefix}:"
        return str(rule["ID"])[len(owner) :] if self._owned(ctx, rule) else ""

    async def install(self, rules: Sequence[LifecycleRule]) -> bool:
        ctx = await self._context()
        current = await self._rules(ctx)
        kept = [rule for rule in current if not self._owned(ctx, rule)]
        ours = [s3_rule(ctx.prefix, rule) for rule in rules]
        owned_now = [rule for rule in current if self._owned(ctx, rule)]
        if sorted(map(_essence, owned_now), key=repr) == sorted(map(_essence, ours), key=repr):
            return False
        wanted = kept + ours
        if wanted:
            with ctx.errors(op="PutBucketLifecycleConfiguration"):
                await ctx.client.put_bucket_lifecycle_configuration(
                    Bucket=ctx.bucket, LifecycleConfiguration={"Rules": wanted}
                )
        else:
            with ctx.errors(op="DeleteBucketLifecycle"):
                await ctx.client.delete_bucket_lifecycle(Bucket=ctx.bucket)
        return True

    async def installed(self) -> list[StoreRule]:
        ctx = await self._context()
        return [
            StoreRule(
                str(rule.get("ID", "")),
                _prefix_of(rule),
                describe(rule),
                self._owned(ctx, rule),
                rule.get("Status") == "Enabled",
                self._gateway_id(ctx, rule),
            )
            for rule in await self._rules(ctx)
        ]
