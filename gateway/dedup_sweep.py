"""The gateway's periodic garbage collection of its dedup buckets
(gateway/layers/dedup/sweep.py): its settings and its loop.

    GATEWAY_DEDUP_SWEEP_INTERVAL   how often (default 1h; 0 turns it off)
    GATEWAY_DEDUP_GRACE            how old an unreferenced blob, or what a
                                   killed write left, must be before a sweep
                                   deletes it (default 1h; read by
                                   bucket_config.py for the layer)

Run by the first worker; safe beside other replicas' sweeps (every step is
conditioned on the generation it read). `storagegw cleanup` runs one sweep
(gateway/upkeep.py), from a cron job with the interval at 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from gateway.core.buckets import Buckets
from gateway.domain.dedup import SweepResult
from gateway.domain.errors import GatewayError
from gateway.domain.settings import parse_interval

log = logging.getLogger("storagegw")

DEFAULT_INTERVAL_S = 3600.0


def read_interval(env: Mapping[str, str]) -> float:
    text = env.get("GATEWAY_DEDUP_SWEEP_INTERVAL")
    return (
        DEFAULT_INTERVAL_S if text is None else parse_interval("GATEWAY_DEDUP_SWEEP_INTERVAL", text)
    )


async def sweep_once(
    buckets: Buckets,
    now: float | None = None,
    report: Callable[[str, SweepResult], None] | None = None,
) -> dict[str, SweepResult]:
    """One garbage collection of every dedup bucket, logged; report: told
    each bucket's result (the metrics)."""
    results: dict[str, SweepResult] = {}
    for name, backend in buckets:
        dedup = backend.capabilities.dedup
        if dedup is None:
            continue
        try:
            results[name] = found = await dedup.collect_garbage(now)
        except GatewayError as error:
            log.warning("bucket %s: dedup sweep failed: %s", name, error.message)
            continue
        if report is not None:
            report(name, found)
        if found.blobs_deleted or found.temps_deleted or found.markers_deleted:
            log.info(
                "bucket %s: dedup sweep deleted %d blob(s), %d temp object(s), %d marker(s)",
                name,
                found.blobs_deleted,
                found.temps_deleted,
                found.markers_deleted,
            )
    return results


async def sweep_forever(
    buckets: Buckets, interval: float, report: Callable[[str, SweepResult], None] | None = None
) -> None:
    while True:
        await sweep_once(buckets, report=report)
        await asyncio.sleep(interval)
