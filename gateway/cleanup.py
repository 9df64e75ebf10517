"""Aborting stale incomplete uploads (S3 multipart uploads a crashed writer
left behind, resumable uploads never finished): `storagegw cleanup`, and the
gateway's optional periodic task."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping

from gateway import config as config_module
from gateway.core.buckets import Buckets
from gateway.core.upload_budget import Unfinished, describe, unfinished_by_bucket
from gateway.domain.errors import GatewayError

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="storagegw cleanup",
        description="Remove unfinished uploads older than an age in every configured bucket: "
        "resumable uploads (local upload directories, S3 multipart uploads aborted, GCS "
        "sessions cancelled, with their records) and S3 multipart uploads a crash left. Reads "
        "the same settings as `storagegw serve`.",
    )
    parser.add_argument(
        "--older-than",
        default=None,
        help="age such as 7d, 12h, 30m or seconds (default: a bucket's lifecycle rule that aborts "
        "the whole bucket's uploads, else GATEWAY_STALE_UPLOAD_AGE, or else "
        "GATEWAY_UPLOAD_LIFETIME: expired uploads)",
    )
    args = parser.parse_args(argv)
    try:
        config = config_module.load(os.environ)
        ages: dict[str, float] = {}
        if args.older_than is None:
            older_than = default_abort_age(config)
            args.older_than = f"{older_than:g}s"
            ages = own_abort_ages(config)  # a bucket's own lifecycle rule
        else:
            older_than = config_module.parse_duration("--older-than", args.older_than)
    except config_module.ConfigError as error:
        print(f"storagegw: configuration error: {error}", file=sys.stderr)
        return 2

    async def run() -> tuple[dict[str, int], dict[str, Unfinished]]:
        buckets = Buckets(
            {name: bucket.build() for name, bucket in config.buckets.items()},
            config.default_bucket,
        )
        try:
            aborted = await abort_stale_uploads(buckets, older_than, ages)
            return aborted, await unfinished_by_bucket(buckets)
        finally:
            await buckets.close()

    try:
        counts, held = asyncio.run(run())
    except GatewayError as error:
        print(f"storagegw: error: {error.message} ({error.reason.value})", file=sys.stderr)
        return 1
    for name, count in counts.items():
        age = f"{ages[name]:g}s" if name in ages else args.older_than
        print(f"{name}: aborted {count} incomplete upload(s) older than {age}")
    if not counts:
        print("no configured bucket keeps incomplete uploads")
    for name, unfinished in held.items():
        print(describe(name, unfinished, config.unfinished_upload_caps().get(name)))
    return 0
