"""Per-call facts the handlers fill in and the interceptor logs, one line per RPC."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from gateway.domain.identity import ANONYMOUS, Principal


@dataclass(slots=True)
class CallLog:
    method: str
    bucket: str = ""
    key: str = ""
    bytes: int = 0
    # Set by the front once it has authenticated the call.
    principal: Principal = ANONYMOUS


_current: contextvars.ContextVar[CallLog | None] = contextvars.ContextVar(
    "storagegw_call_log", default=None
)


def start(method: str) -> CallLog:
    log = CallLog(method)
    _current.set(log)
    return log


def current() -> CallLog:
    """The running call's record; a throwaway one outside an RPC (tests)."""
    log = _current.get()
    return log if log is not None else CallLog("")


def note(bucket: str, key: str) -> None:
    """What the request names (the bucket as given, until it is resolved)."""
    log = current()
    log.bucket, log.key = bucket, key


def resolved(bucket: str) -> None:
    """The bucket the call works on, by name: the default's name for "", so the
    log names every call's bucket the same way however the request spelled it."""
    current().bucket = bucket
