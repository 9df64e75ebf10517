"""The cyclic garbage collector's settings for a gateway process that serves.

What a gateway loads as it starts (modules, the gRPC server, the SDKs of its
stores and of telemetry, some 65,000 to 80,000 tracked objects) lives as long
as the process, yet every full collection walks all of it again: under a
steady stream of 4 KiB Gets the benchmark machine made two or three full
collections every six seconds, 30 to 50 ms each, during which no call on the
event loop moves. Freezing what exists once the gateway serves moves those
objects to the permanent generation, which no collection walks: full
collections then took about 1 ms.

The youngest generation is collected after 700 net allocations of tracked
objects by default; a small call allocates and frees dozens, so the
collector ran every few calls and walked the live ones each time. From 5,000
on it ran about twenty times less often, and the collector's time per Get fell
from about 11 to 2 µs with telemetry off and from 23 to 3 µs with it on (its
spans wait in the export queue, and so survive collections). Garbage in
reference cycles now waits up to 5,000 allocations, not 700, to be freed.

Only a process that serves settles its heap (gateway.workers.serve, alone or as
one of the workers): a gateway started inside another program (the tests, an
embedding application) leaves that program's collector as it is.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("storagegw")

YOUNG_THRESHOLD = 5000


def settle_heap() -> None:
    """Collect what starting left behind, freeze the rest, and raise the young
    generation's threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    log.debug(
        "garbage collector: %d objects of the start frozen, young generation collected "
        "every %d allocations",
        gc.get_freeze_count(),
        YOUNG_THRESHOLD,
    )
