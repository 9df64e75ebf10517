"""Blobs and their markers: how a write comes to hold a blob that no sweep
will take from under its reference.

Objects (names.py): the blob B = .cas/<sha[:2]>/<sha>, its marker
M = .cas/live/<sha> (empty; its metadata says "live" or "condemned"), and
the references R at user keys.

A writer, before writing a reference to B (`secure`):
  1. reads M; if it is live (or absent) it rewrites it, live, on condition
     that M is still the generation it read (absent: that none exists): the
     touch, T. A failed condition means another write came between: if M is
     live now, that write serves as the touch (it came after the read, and
     the time counts from the read); else start again at 1;
  2. then B must exist: if it does not, the writer's own bytes (its temp
     object) are promoted to B (overwriting: same bytes);
  3. if M was condemned, the writer promotes its bytes to B first
     (overwriting: a new generation of B) and only then makes M live again,
     on condition of the condemned generation it read;
  4. writes R, and its elapsed time from T to R stays under half the grace
     (it touches again if not).
A live marker last written less than a quarter of the grace period ago (by
its update time) serves as a touch without a write: the collector needs it
older than the grace period at C, so C comes more than three quarters of the
grace period after the writer read it, past R (under half of it), with a
quarter of the grace period to spare for the clocks of the store and of the
replicas.
A writer without bytes of its own (a Copy, a reference to an existing blob)
gives up at 2 or 3 (the object is being collected, so no reference to it
remained).

The collector (sweep.py), for a blob B older than the grace period:
  C. heads B (generation gB) and M (generation gM, or absent); M must be older
     than the grace period too (or absent);
  L. lists every reference, after C for every candidate;
  X. if no reference names B: condemns M, on condition of gM (absent: create
     only); a failed condition means a writer touched it: B is kept;
  D. deletes B on condition of gB; a failed one: a writer revived it;
  E. deletes M on condition of the condemned generation.

Why no interleaving leaves a reference without its blob. Take a writer whose
touch T succeeded and a collector whose condemnation X succeeded, of the same
blob. X is conditioned on the generation of M read at C, T on the one the
writer read before it. If the writer read M after X it saw it condemned, and
did not touch (it took path 3); if it read M before X and wrote after X, its
condition failed. So T came before X, and X's condition held, so C read the
generation T wrote: C came after T, and found M older than the grace period.
The writer writes R within half the grace period of T, so R came before C,
hence before L: the listing saw R (unless R was deleted since, in which case
B is rightly unreferenced), and the collector did not condemn. A writer on
path 3 promoted B before making M live; D, conditioned on the generation C
read, fails once B was promoted again, and if D came first the promotion
recreates B. The new-content path (2) is the same with the promotion as the
freshness: C skips a B younger than the grace period.

Why no blob is kept forever: a blob no reference names is older than the grace
period once its last touch is, and the next sweep condemns and deletes it;
temp objects past the grace period (a writer killed between its bytes and its
reference) and markers without a blob are deleted by the sweep too.
"""

from __future__ import annotations

import hashlib
import time

from gateway.backends.base import Backend
from gateway.domain.checksums import crc32c
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import (
    NO_CONDITIONS,
    Checksums,
    Conditions,
    CopyRequest,
    ObjectMeta,
    WriteOptions,
)
from gateway.layers.dedup.names import blob_key, marker_key

STATE = "storagegw-dedup-state"
LIVE = "live"
CONDEMNED = "condemned"
# How often a writer retries a touch another writer's touch beat.
_TOUCH_ATTEMPTS = 16


async def head_or_none(backend: Backend, key: str) -> ObjectMeta | None:
    try:
        return await backend.head(key)
    except GatewayError as error:
        if error.reason is Reason.OBJECT_NOT_FOUND:
            return None
        raise


def is_condemned(marker: ObjectMeta) -> bool:
    return any(k.lower() == STATE and v == CONDEMNED for k, v in marker.metadata.items())


async def put_small(backend: Backend, key: str, data: bytes, options: WriteOptions) -> ObjectMeta:
    """Store a small object whole (a reference, a marker)."""
    writer = await backend.open_write(key, options)
    try:
        await writer.write(data)
        sums = Checksums(crc32c(data), hashlib.sha256(data).digest(), len(data))
        return await writer.commit(sums)
    except BaseException:
        await writer.abort()
        raise


def expecting(marker: ObjectMeta | None) -> Conditions:
    """Conditions that hold only while the marker is still what was read."""
    if marker is None:
        return Conditions(if_none_match="*")
    return Conditions(if_generation_match=marker.generation)


async def write_marker(
    backend: Backend, sha256: bytes, state: str, expected: ObjectMeta | None
) -> ObjectMeta:
    options = WriteOptions(metadata={STATE: state}, conditions=expecting(expected))
    return await put_small(backend, marker_key(sha256), b"", options)


async def promote(backend: Backend, source_key: str, destination_key: str) -> None:
    """Make the object at source_key the one at destination_key (replacing
    any: a blob's bytes are the same whoever wrote them)."""
    mover = backend.capabilities.mover
    if mover is not None:
        await mover.move(source_key, destination_key)
        return
    await backend.copy(CopyRequest(source_key, destination_key))
    await backend.delete(source_key)


async def discard(backend: Backend, key: str) -> None:
    try:
        await backend.delete(key)
    except GatewayError as error:
        if error.reason is not Reason.OBJECT_NOT_FOUND:
            raise


def _raced(error: GatewayError) -> bool:
    return error.reason in (Reason.PRECONDITION_FAILED, Reason.OBJECT_NOT_FOUND)


async def secure(
    backend: Backend, sha256: bytes, temp: str | None, *, fresh_s: float = 0.0
) -> float | None:
    """Make sure the blob of sha256 exists and is touched, so that a reference
    written within half the grace period of the time returned (monotonic)
    keeps it; temp: the writer's own bytes, promoted when needed and else
    deleted. None: the blob is gone or going and there are no bytes of one's
    own (temp None). fresh_s: a live marker touched less than that long ago
    (a quarter of the grace period: see below) serves as this write's touch."""
    for _ in range(_TOUCH_ATTEMPTS):
        started = time.monotonic()
        marker = await head_or_none(backend, marker_key(sha256))
        if marker is not None and not is_condemned(marker) and _younger(marker, fresh_s):
            return await _with_blob(backend, sha256, temp, started)
        if marker is not None and is_condemned(marker):
            if temp is None:
                return None
            # Promoted first: the collector's delete, conditioned on the
            # generation it saw, then fails (or came first, and this recreates).
            await promote(backend, temp, blob_key(sha256))
            temp = None
            try:
                await write_marker(backend, sha256, LIVE, marker)
            except GatewayError as error:
                if not _raced(error):
                    raise
                continue  # the collector removed the marker, or another revived it
            return started
        try:
            await write_marker(backend, sha256, LIVE, marker)
        except GatewayError as error:
            if not _raced(error):
                raise
            # Another writer's touch since `started` serves as well (see above).
            again = await head_or_none(backend, marker_key(sha256))
            if again is None or is_condemned(again):
                continue
        return await _with_blob(backend, sha256, temp, started)
    raise GatewayError(
        Reason.BACKEND_UNAVAILABLE,
        "too many concurrent writes of the same content; try again",
        key=blob_key(sha256),
    )


def _younger(marker: ObjectMeta, fresh_s: float) -> bool:
    return time.time() - marker.update_time_ns / 1e9 < fresh_s


async def _with_blob(
    backend: Backend, sha256: bytes, temp: str | None, touched: float
) -> float | None:
    """The marker touched: the blob, promoted from temp if it is not there."""
    if await head_or_none(backend, blob_key(sha256)) is None:
        if temp is None:
            return None
        await promote(backend, temp, blob_key(sha256))
    elif temp is not None:
        await discard(backend, temp)
    return touched


def within(touched: float, grace_s: float) -> bool:
    """Whether a reference written now is within half the grace period of
    the touch (see the argument above)."""
    return time.monotonic() - touched < grace_s / 2


async def delete_if(backend: Backend, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
    """Delete key when conditions hold; False when they do not (or it is gone)."""
    try:
        return await backend.delete(key, conditions)
    except GatewayError as error:
        if _raced(error):
            return False
        raise
