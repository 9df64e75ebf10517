"""Bearer tokens already verified, so that a client sending the same JWT on
every call pays the signature check once, not per call (an RS256 verify and
the claim checks cost more than a small Get's own work).

An entry is keyed by the token's SHA-256 (the token itself is not kept) and
is used only while the token has not expired (its exp, without the leeway
the first check allowed) and while the key set it was verified against is
still the current one: any refetch of the JWKS (rotation, age) empties the
cache's use, so a retired key stops being honoured when the key set says so,
exactly as without the cache. The cache holds at most `capacity` tokens; the
oldest entry makes room for a new one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.domain.identity import Principal

DEFAULT_CAPACITY = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    expires_at: float  # the token's exp (seconds since the epoch)
    key_set: int  # the key set generation that verified it


class VerifiedTokens:
    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, clock: Callable[[], float] = time.time
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._clock = clock
        self._entries: dict[bytes, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str, key_set: int | None) -> Principal | None:
        """The principal token was verified as, if that still holds for the
        current key set generation (None: the key set must be refetched)."""
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if key_set is None or entry.key_set != key_set or self._clock() >= entry.expires_at:
            del self._entries[key]
            return None
        return entry.principal

    def put(self, token: str, principal: Principal, expires_at: float, key_set: int) -> None:
        if self._clock() >= expires_at:
            return
        key = self._key(token)
        self._entries.pop(key, None)
        while len(self._entries) >= self.capacity:
            del self._entries[next(iter(self._entries))]  # the oldest
        self._entries[key] = _Entry(principal, expires_at, key_set)
