"""What the gateway's sweeps (lifecycle_sweep.py, pending_sweep.py) share:
the delete pinned to the generation they read, which loses quietly to a
write or a delete that got there first (their clock: domain/clock.py).

Safe on several replicas at once: an object written again since it was
read keeps its new generation, so the pinned delete leaves it alone."""

from __future__ import annotations

import asyncio

from gateway.backends.base import Backend
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions

# What a step pinned to a generation answers when another got there first.
RACED = frozenset({Reason.OBJECT_NOT_FOUND, Reason.PRECONDITION_FAILED})


async def delete_older(backend: Backend, key: str, generation: int | None, cutoff_ns: int) -> bool:
    """Delete key's object, pinned to generation, or where that is None to
    the generation a head finds once it confirms the object was last written
    before cutoff_ns. Whether it was deleted; False: it was written again or
    deleted since it was read (a race, not an error). The delete, once sent,
    finishes even if the sweep is cancelled."""
    try:
        if generation is None:
            meta = await backend.head(key)
            if meta.update_time_ns >= cutoff_ns:
                return False
            generation = meta.generation
        pinned = Conditions(if_generation_match=generation)
        return await asyncio.shield(backend.delete(key, pinned))
    except GatewayError as error:
        if error.reason not in RACED:
            raise
        return False
