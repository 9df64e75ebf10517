"""The sweeps' clock: "now" in nanoseconds since the epoch, as the stores
date objects (ObjectMeta.update_time_ns). Here, below every layer, so that
the core's sweeps and the dedup layer's garbage collector read one clock.

A sweep takes `now` (seconds since the epoch) as a parameter, so that tests
and `storagegw cleanup` can drive it without waiting out an age."""

from __future__ import annotations

import time

NS = 1_000_000_000


def nanoseconds(now: float | None) -> int:
    """now (seconds since the epoch; None: the clock's) in nanoseconds."""
    return int((time.time() if now is None else now) * NS)
