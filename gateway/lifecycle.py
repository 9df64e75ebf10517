"""Lifecycle rules, from the configuration to the stores and the gateway's
task: `storagegw lifecycle apply`, and what the gateway does at start and
every GATEWAY_CLEANUP_INTERVAL (on its first worker).

Each bucket's [[buckets.NAME.lifecycle]] rules are placed by
gateway/core/lifecycle_plan.py (a rule no one can enforce stops the start
with a ConfigError naming it). The first worker installs the native ones
in the store, once, at start (a failure is logged: the gateway's task then
expires in the store's place); its cleanup task aborts stale uploads by
each bucket's abort rule and expires what the store does not
(GATEWAY_CLEANUP_INTERVAL=0: never; `storagegw cleanup`, gateway/upkeep.py,
runs the same passes once).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping

from gateway import cleanup
from gateway import config as config_module
from gateway.bucket_setup import build_buckets
from gateway.core.buckets import Action, Buckets
from gateway.core.lifecycle_plan import BucketLifecycle as BucketLifecycle
from gateway.core.lifecycle_plan import plan
from gateway.core.lifecycle_sweep import ExpiryCounts as ExpiryCounts
from gateway.core.lifecycle_sweep import sweep_expiry
from gateway.domain.errors import GatewayError

log = logging.getLogger("storagegw")


def build_plans(config: config_module.Config, buckets: Buckets) -> dict[str, BucketLifecycle]:
    """Every bucket's rules placed (ConfigError: a rule no one can enforce)."""
    unguarded = buckets.unguarded()
    default_age = cleanup.default_abort_age(config)
    plans = {}
    for name, bucket in config.buckets.items():
        target = unguarded.open(name, "", Action.LIST)
        plans[name] = plan(f"buckets.{name}.lifecycle", target, bucket.lifecycle, default_age)
    return plans


async def apply(buckets: Buckets, plans: Mapping[str, BucketLifecycle]) -> dict[str, bool]:
    """Install each bucket's native rules in its store, where the bucket
    has a lifecycle array: {bucket: whether its store's rules changed}."""
    changed = {}
    for name, backend in buckets:
        installer = backend.capabilities.lifecycle
        bucket_plan = plans.get(name)
        if installer is None or bucket_plan is None or not bucket_plan.installs:
            continue
        changed[name] = await installer.install(bucket_plan.native())
    return changed


async def apply_logged(buckets: Buckets, plans: Mapping[str, BucketLifecycle]) -> None:
    """apply(), as the gateway runs it at start, bucket by bucket: a store
    that refuses is logged, and the gateway's task expires in its place."""
    for name, backend in buckets:
        try:
            changed = await apply(Buckets({name: backend}, name), plans)
        except GatewayError as error:
            log.warning(
                "bucket %s: lifecycle rules not installed in the store: %s; the gateway's "
                "task expires objects in its place",
                name,
                error.message,
            )
            continue
        if changed.get(name):
            log.info("bucket %s: lifecycle rules installed in the store", name)


async def expire_once(
    buckets: Buckets, plans: Mapping[str, BucketLifecycle], now: float | None = None
) -> dict[str, ExpiryCounts]:
    """One run of the gateway's expiry, logged."""
    counts = await sweep_expiry(buckets.unguarded(), plans, now)
    for name, found in counts.items():
        if found.expired or found.raced:
            log.info(
                "bucket %s: lifecycle expired %d object(s), kept %d written again meanwhile",
                name,
                found.expired,
                found.raced,
            )
    return counts


async def maintain_forever(
    buckets: Buckets,
    plans: Mapping[str, BucketLifecycle],
    abort_stale: Callable[[], Awaitable[object]],
    interval: float,
) -> None:
    """The first worker's upkeep: install the native rules once, then every
    interval abort stale uploads and run the rules the gateway enforces
    (interval 0: never; `storagegw cleanup` runs them)."""
    await apply_logged(buckets, plans)
    while interval:
        try:
            await abort_stale()
        except GatewayError as error:
            log.warning("stale upload cleanup failed: %s", error.message)
        try:
            await expire_once(buckets, plans)
        except GatewayError as error:
            log.warning("lifecycle expiry failed: %s", error.message)
        await asyncio.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    """`storagegw lifecycle apply`: install the configured rules in the stores."""
    parser = argparse.ArgumentParser(
        prog="storagegw lifecycle",
        description="Install each bucket's lifecycle rules in its store's own lifecycle "
        "configuration (S3, GCS), as the gateway does at start, replacing only the rules "
        "it installed before. Reads the same settings as `storagegw serve`.",
    )
    parser.add_argument("action", choices=["apply"])
    parser.parse_args(argv)
    try:
        config = config_module.load(os.environ)
        buckets = build_buckets(config, (), None, None, None)
        plans = build_plans(config, buckets)
    except config_module.ConfigError as error:
        print(f"storagegw: configuration error: {error}", file=sys.stderr)
        return 2

    async def run() -> dict[str, bool]:
        try:
            return await apply(buckets, plans)
        finally:
            await buckets.close()

    try:
        changed = asyncio.run(run())
    except GatewayError as error:
        print(f"storagegw: error: {error.message} ({error.reason.value})", file=sys.stderr)
        return 1
    for name, done in changed.items():
        print(f"{name}: {'installed' if done else 'already in place'}")
    if not changed:
        print("no bucket has lifecycle rules for its store")
    return 0
