"""Retry policy for resumable transfers: which errors, how long to wait, when to stop.

Pure logic (no sleeping here): the flows (_flows.py) ask a Retrier whether
to try again and for how long to pause, then yield the pause to their
transport, which waits its own way.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import grpc

from storagegw.errors import (
    DeadlineExceeded,
    InvalidWriteOffset,
    StorageError,
    TooManyStreams,
    Unavailable,
    UploadBusy,
)

__all__ = ["Retrier", "RetryPolicy", "is_transient", "retry_after"]

# Status codes gRPC itself reports for a connection that broke mid-call
# (no ErrorInfo from the gateway): "Socket closed", "Stream removed", RST_STREAM.
_TRANSPORT_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
)


def is_transient(error: BaseException) -> bool:
    """Whether a transfer that failed with `error` may succeed when resumed.

    UNAVAILABLE and DEADLINE_EXCEEDED (STREAM_IDLE_TIMEOUT included), a
    broken connection (a gRPC-level UNKNOWN/INTERNAL carrying no gateway
    reason), UPLOAD_BUSY (the gateway still holds the broken stream),
    INVALID_WRITE_OFFSET (re-query and continue) and TOO_MANY_STREAMS (the
    gateway is at its stream cap; see retry_after). Everything else, e.g. a
    failed precondition, is final.
    """
    if isinstance(
        error, Unavailable | DeadlineExceeded | UploadBusy | InvalidWriteOffset | TooManyStreams
    ):
        return True
    if isinstance(error, StorageError):
        return (
            error.grpc_error is not None and error.reason is None and error.code in _TRANSPORT_CODES
        )
    return isinstance(error, ConnectionError)


def retry_after(error: BaseException) -> float:
    """The pause the gateway asked for (ErrorInfo retry_after_s), 0 if none."""
    if not isinstance(error, StorageError):
        return 0.0
    try:
        return max(0.0, float(error.metadata.get("retry_after_s", 0)))
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """How resumable transfers (put_file, download_file) retry.

    Args:
        max_attempts: consecutive failed attempts allowed without progress;
            an attempt that moved the transfer forward resets the count, so a
            long transfer over a flaky link is not capped by a fixed total.
            1 means no retries.
        deadline: seconds from the first attempt after which no retry starts
            (None: no limit).
        initial_backoff, max_backoff, multiplier: the pause before retry n is
            min(max_backoff, initial_backoff * multiplier ** (n - 1)) ...
        jitter: ... less a random fraction up to `jitter` of it (0 to 1),
            so that many clients cut off at once do not return in step.
    """

    max_attempts: int = 8
    deadline: float | None = None
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    _random: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and the multiplier >= 1")

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        return cls(max_attempts=1)

    def backoff(self, failures: int) -> float:
        """The pause after `failures` consecutive failures (1 or more)."""
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** (failures - 1))
        return base * (1 - self.jitter * self._random.random())


class Retrier:
    """One transfer's retry state under a RetryPolicy."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0
        self.retries = 0
        self._started = time.monotonic()
        self._progress_mark: int | None = None

    def next_pause(self, error: BaseException, position: int) -> float | None:
        """The seconds to wait before resuming at `position`, or None to give up."""
        if not is_transient(error):
            return None
        if self._progress_mark is not None and position > self._progress_mark:
            self.failures = 0  # the last attempt moved forward
        self._progress_mark = position
        self.failures += 1
        if self.failures >= self.policy.max_attempts:
            return None
        # Never sooner than the gateway asked (TOO_MANY_STREAMS says when).
        pause = max(self.policy.backoff(self.failures), retry_after(error))
        deadline = self.policy.deadline
        if deadline is not None and time.monotonic() - self._started + pause > deadline:
            return None
        self.retries += 1
        return pause
