"""`storagegw cleanup`: one pass of each kind of upkeep the configured
buckets need, the passes the gateway's first worker runs periodically, for
a cron job or a Kubernetes CronJob (with the periodic tasks off:
GATEWAY_CLEANUP_INTERVAL=0, GATEWAY_DEDUP_SWEEP_INTERVAL=0), or to force a
pass now.

    uploads    abort stale incomplete uploads (cleanup.py: each bucket's
               abort rule, or --older-than)
    lifecycle  expire objects by the rules the gateway enforces, and the
               native ones the store does not report (core/lifecycle_sweep.py)
    dedup      collect what no reference names in dedup buckets, past
               GATEWAY_DEDUP_GRACE (layers/dedup/sweep.py)

In that order: an object the lifecycle expires is a reference the dedup
sweep may then collect the blob of (once that is past the grace period).
Each bucket's pass runs on its own: a failed one is reported and the rest
still run. Every pass is the gateway's own entry point, safe beside a
running gateway and other replicas (each delete pinned to what it read).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway import cleanup, lifecycle
from gateway import config as config_module
from gateway.bucket_setup import build_buckets
from gateway.core.buckets import Buckets
from gateway.core.lifecycle_plan import BucketLifecycle
from gateway.core.lifecycle_sweep import sweep_expiry
from gateway.core.upload_budget import describe, unfinished_of
from gateway.domain.errors import GatewayError

KINDS = ("uploads", "lifecycle", "dedup")
_NOTHING = {
    "uploads": "no configured bucket keeps incomplete uploads",
    "lifecycle": "no bucket has an expiry rule the gateway runs",
    "dedup": "no dedup bucket to sweep",
}
_WHAT = {"uploads": "stale upload abort", "lifecycle": "lifecycle expiry", "dedup": "dedup sweep"}


@dataclass(frozen=True, slots=True)
class Request:
    """What to run: the kinds, the default abort age (with its label as
    given), the buckets' own abort ages, whether to delete."""

    kinds: frozenset[str]
    older_than: float
    older_than_label: str
    ages: Mapping[str, float]
    dry_run: bool = False
    # Seconds since the epoch (None: the clock's), for the expiry and the sweep.
    now: float | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One bucket's pass of one kind: what it did, or how it failed."""

    bucket: str
    kind: str
    summary: str = ""
    error: GatewayError | None = None

    def line(self) -> str:
        if self.error is None:
            return f"{self.bucket}: {self.summary}"
        reason = self.error.reason.value
        return f"{self.bucket}: {_WHAT[self.kind]} failed: {self.error.message} ({reason})"


async def run_passes(
    buckets: Buckets,
    config: config_module.Config,
    plans: Mapping[str, BucketLifecycle],
    request: Request,
) -> list[Outcome]:
    """Every pass asked for, kind after kind (KINDS' order), bucket by bucket."""
    outcomes: list[Outcome] = []
    if "uploads" in request.kinds:
        outcomes += await _abort_uploads(buckets, request)
    if "lifecycle" in request.kinds:
        outcomes += await _expire(buckets, plans, request)
    if "dedup" in request.kinds:
        outcomes += await _collect(buckets, config, request)
    return outcomes


async def _abort_uploads(buckets: Buckets, request: Request) -> list[Outcome]:
    outcomes = []
    for name, backend in buckets:
        cleaner = backend.capabilities.cleaner
        if cleaner is None:
            continue
        own = request.ages.get(name)
        age = request.older_than if own is None else own
        label = request.older_than_label if own is None else f"{own:g}s"
        try:
            aborted = await cleaner.abort_stale_uploads(age, dry_run=request.dry_run)
        except GatewayError as error:
            outcomes.append(Outcome(name, "uploads", error=error))
            continue
        verb = "would abort" if request.dry_run else "aborted"
        summary = f"{verb} {aborted} incomplete upload(s) older than {label}"
        outcomes.append(Outcome(name, "uploads", summary))
    return outcomes


async def _expire(
    buckets: Buckets, plans: Mapping[str, BucketLifecycle], request: Request
) -> list[Outcome]:
    outcomes = []
    unguarded = buckets.unguarded()  # the pass acts for no caller, as the gateway's task
    for name, plan in plans.items():
        try:
            counts = await sweep_expiry(unguarded, {name: plan}, request.now, request.dry_run)
        except GatewayError as error:
            outcomes.append(Outcome(name, "lifecycle", error=error))
            continue
        found = counts.get(name)
        if found is None:
            continue  # no expiry rule the gateway runs here
        if request.dry_run:
            summary = f"lifecycle would expire {found.expired} object(s) ({found.bytes} bytes)"
        else:
            summary = (
                f"lifecycle expired {found.expired} object(s) ({found.bytes} bytes), "
                f"kept {found.raced} written again meanwhile"
            )
        outcomes.append(Outcome(name, "lifecycle", summary))
    return outcomes


async def _collect(
    buckets: Buckets, config: config_module.Config, request: Request
) -> list[Outcome]:
    outcomes = []
    for name, backend in buckets:
        dedup = backend.capabilities.dedup
        if dedup is None:
            continue
        try:
            found = await dedup.collect_garbage(request.now, request.dry_run)
        except GatewayError as error:
            outcomes.append(Outcome(name, "dedup", error=error))
            continue
        verb = "would delete" if request.dry_run else "deleted"
        summary = (
            f"dedup sweep {verb} {found.blobs_deleted} unreferenced blob(s), "
            f"{found.temps_deleted} temp object(s), {found.markers_deleted} marker(s) "
            f"older than {config.buckets[name].dedup_grace_s:g}s ({found.bytes_deleted} bytes)"
        )
        if found.raced:
            summary += f", kept {found.raced} a writer took up meanwhile"
        outcomes.append(Outcome(name, "dedup", summary))
    return outcomes


async def _held(
    buckets: Buckets, config: config_module.Config, outcomes: list[Outcome]
) -> list[str]:
    """What unfinished uploads still hold, per bucket that counts them (a
    failure to count joins outcomes)."""
    caps = config.unfinished_upload_caps()
    lines = []
    for name, backend in buckets:
        try:
            unfinished = await unfinished_of(backend)
        except GatewayError as error:
            outcomes.append(Outcome(name, "uploads", error=error))
            continue
        if unfinished is not None:
            lines.append(describe(name, unfinished, caps.get(name)))
    return lines


def _kinds(parser: argparse.ArgumentParser, only: Sequence[str] | None) -> frozenset[str]:
    """--only's kinds (repeated, or comma-separated); all without it."""
    if not only:
        return frozenset(KINDS)
    kinds = {part.strip() for value in only for part in value.split(",") if part.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown or not kinds:
        parser.error(f"--only takes {', '.join(KINDS)}; not {', '.join(unknown) or 'nothing'}")
    return frozenset(kinds)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storagegw cleanup",
        description="Run one pass of each kind of upkeep the configured buckets need, as the "
        "gateway's first worker does periodically: abort unfinished uploads older than an age "
        "(resumable uploads: local upload directories, S3 multipart uploads aborted, GCS "
        "sessions cancelled, with their records; S3 multipart uploads a crash left), expire "
        "objects by the lifecycle rules the gateway runs, and collect what no object names in "
        "dedup buckets (past GATEWAY_DEDUP_GRACE). Reads the same settings as `storagegw "
        "serve`. Exit status 1 if any pass failed (the others still run).",
    )
    parser.add_argument(
        "--older-than",
        default=None,
        help="uploads: age such as 7d, 12h, 30m or seconds (default: a bucket's lifecycle rule "
        "that aborts the whole bucket's uploads, else GATEWAY_STALE_UPLOAD_AGE, or else "
        "GATEWAY_UPLOAD_LIFETIME: expired uploads)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="KIND",
        help=f"run only these passes: {', '.join(KINDS)} (repeat it, or separate them with "
        "commas; default: all)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="report what each pass would abort or delete, and change nothing",
    )
    return parser


def _request(
    args: argparse.Namespace, kinds: frozenset[str]
) -> tuple[config_module.Config, Request]:
    """The configuration and what to run (ConfigError: a bad setting)."""
    config = config_module.load(os.environ)
    if args.older_than is None:
        older_than = cleanup.default_abort_age(config)
        label = f"{older_than:g}s"
        ages = cleanup.own_abort_ages(config)  # a bucket's own lifecycle rule
    else:
        older_than = config_module.parse_duration("--older-than", args.older_than)
        label, ages = args.older_than, {}
    return config, Request(kinds, older_than, label, ages, args.dry_run)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    kinds = _kinds(parser, args.only)
    try:
        config, request = _request(args, kinds)
    except config_module.ConfigError as error:
        print(f"storagegw: configuration error: {error}", file=sys.stderr)
        return 2

    async def run() -> tuple[list[Outcome], list[str]]:
        buckets = build_buckets(config, (), None, None, None)
        try:
            plans = lifecycle.build_plans(config, buckets)
            outcomes = await run_passes(buckets, config, plans, request)
            held = await _held(buckets, config, outcomes) if "uploads" in kinds else []
            return outcomes, held
        finally:
            await buckets.close()

    try:
        outcomes, held = asyncio.run(run())
    except config_module.ConfigError as error:
        print(f"storagegw: configuration error: {error}", file=sys.stderr)
        return 2
    except GatewayError as error:
        print(f"storagegw: error: {error.message} ({error.reason.value})", file=sys.stderr)
        return 1
    return _report(request, outcomes, held)


def _report(request: Request, outcomes: list[Outcome], held: list[str]) -> int:
    """Print a line per bucket and kind (failures on stderr); the exit status."""
    for kind in KINDS:
        if kind not in request.kinds:
            continue
        done = [outcome for outcome in outcomes if outcome.kind == kind]
        for outcome in done:
            print(outcome.line(), file=sys.stdout if outcome.error is None else sys.stderr)
        if not done:
            print(_NOTHING[kind])
    for line in held:
        print(line)
    return 1 if any(outcome.error is not None for outcome in outcomes) else 0
