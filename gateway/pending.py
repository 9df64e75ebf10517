"""The gateway's periodic sweep of pending objects (gateway.core.pending_sweep):
its settings and its loop.

    GATEWAY_PENDING_SWEEP_INTERVAL   how often (default 1m; 0 turns it off)
    GATEWAY_PENDING_GRACE            how long a direct upload waits for its
                                     FinalizeUpload before the sweep finalizes
                                     it (default 10m)
    GATEWAY_PENDING_MAX_AGE          pending objects older than this are
                                     deleted unchecked (default 7d)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from gateway.core.buckets import Buckets
from gateway.core.pending_sweep import SweepCounts as SweepCounts
from gateway.core.pending_sweep import sweep_pending
from gateway.domain.errors import GatewayError
from gateway.domain.settings import ConfigError, parse_duration

log = logging.getLogger("storagegw")


@dataclass(frozen=True, slots=True)
class PendingSweepSettings:
    interval: float = 60.0
    grace: float = 600.0
    max_age: float = 7 * 86400.0


def read_settings(env: Mapping[str, str]) -> PendingSweepSettings:
    default = PendingSweepSettings()

    def duration(name: str, fallback: float) -> float:
        text = env.get(name)
        if text is None:
            return fallback
        if name == "GATEWAY_PENDING_SWEEP_INTERVAL" and text.strip() == "0":
            return 0.0  # no sweep
        return parse_duration(name, text)

    settings = PendingSweepSettings(
        duration("GATEWAY_PENDING_SWEEP_INTERVAL", default.interval),
        duration("GATEWAY_PENDING_GRACE", default.grace),
        duration("GATEWAY_PENDING_MAX_AGE", default.max_age),
    )
    if settings.max_age <= settings.grace:
        raise ConfigError("GATEWAY_PENDING_MAX_AGE", "must be longer than GATEWAY_PENDING_GRACE")
    return settings


async def sweep_once(
    buckets: Buckets, settings: PendingSweepSettings, max_size: int | None = None
) -> dict[str, SweepCounts]:
    """One sweep of every bucket that checks its uploads, logged; max_size:
    the gateway's object size limit."""
    counts = await sweep_pending(
        buckets.unguarded(), settings.grace, settings.max_age, max_size=max_size
    )
    for name, found in counts.items():
        if found.finalized or found.refused or found.expired or found.left:
            log.info(
                "bucket %s: pending uploads finalized %d, refused %d, left %d, expired %d",
                name,
                found.finalized,
                found.refused,
                found.left,
                found.expired,
            )
    return counts


async def sweep_forever(sweep: Callable[[], Awaitable[object]], interval: float) -> None:
    """The gateway's task (of several workers, the first one's): sweep
    (sweep_once, with the gateway's settings) every interval seconds."""
    while True:
        try:
            await sweep()
        except GatewayError as error:
            log.warning("pending upload sweep failed: %s", error.message)
        await asyncio.sleep(interval)
