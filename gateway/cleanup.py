"""Aborting stale incomplete uploads (S3 multipart uploads a crashed writer
left behind, resumable uploads never finished): the gateway's periodic task,
and the uploads pass of `storagegw cleanup` (gateway/upkeep.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gateway import config as config_module
from gateway.core.buckets import Buckets
from gateway.core.upload_budget import describe, unfinished_by_bucket

log = logging.getLogger("storagegw")


async def abort_stale_uploads(
    buckets: Buckets, older_than_s: float, ages: Mapping[str, float | None] | None = None
) -> dict[str, int]:
    """{bucket: uploads aborted} for every bucket whose backend keeps any;
    ages: a bucket's own age (its lifecycle's abort rule), where it has one."""
    counts: dict[str, int] = {}
    for name, backend in buckets:
        cleaner = backend.capabilities.cleaner
        if cleaner is not None:
            age = (ages or {}).get(name)
            counts[name] = await cleaner.abort_stale_uploads(older_than_s if age is None else age)
    return counts


def own_abort_ages(config: config_module.Config) -> dict[str, float]:
    """{bucket: its lifecycle's abort age for the whole bucket}, for the
    buckets with such a rule (prefix "", abort_incomplete_uploads_after)."""
    ages = {}
    for name, bucket in config.buckets.items():
        for rule in bucket.lifecycle or ():
            age = rule.abort_incomplete_uploads_after
            if age is not None and not rule.prefix:
                ages[name] = age
    return ages


def default_abort_age(config: config_module.Config) -> float:
    """The default lifecycle rule's age: stale_upload_age, or else
    upload_lifetime (expired resumable uploads)."""
    age = config.stale_upload_age
    return float(config.upload_lifetime) if age is None else age


async def sweep_stale(
    buckets: Buckets,
    config: config_module.Config,
    ages: Mapping[str, float | None] | None = None,
) -> dict[str, int]:
    """The gateway's periodic cleanup: abort incomplete uploads older than
    each bucket's abort rule (gateway/core/lifecycle_plan.py: its own, or
    the default one, default_abort_age), and log what unfinished uploads hold."""
    age = default_abort_age(config)
    counts = await abort_stale_uploads(buckets, age, ages)
    for name, count in counts.items():
        if count:
            log.info("bucket %s: aborted %d stale incomplete upload(s)", name, count)
    caps = config.unfinished_upload_caps()
    for name, held in (await unfinished_by_bucket(buckets)).items():
        log.info("%s", describe(name, held, caps.get(name)))
    return counts
