"""Per-call facts the handlers fill in and the interceptor logs, one line per RPC."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

from gateway.domain.identity import ANONYMOUS, Principal


@dataclass(slots=True)
class CallLog:
    method: str
    bucket: str = ""
    key: str = ""
    bytes: int = 0
    # What the request does ("read", "write"...): the last access it asked
    # for at the core's door, the denied one if it was refused.
    action: str = ""
    # The reason of the error the call ended with ("" when it succeeded).
    reason: str = ""
    # Set by the front once it has authenticated the call.
    principal: Principal = ANONYMOUS
    # For traces: the object's size once known (-1: not known), the chunks
    # the backend took or served, the resumable upload the call works on.
    object_size: int = -1
    chunks: int = 0
    upload_id: str = ""
    # A call on many keys (DeleteObjects): each key with the reason it failed
    # for ("" when it went through); the audit writes a line for each.
    batch: list[tuple[str, str]] = field(default_factory=list)


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


def note(bucket: str, key: str, action: str = "") -> None:
    """What the request names (the bucket as given, until it is resolved)
    and what it does to it."""
    log = current()
    log.bucket, log.key = bucket, key
    if action:
        log.action = action


def resolved(bucket: str) -> None:
    """The bucket the call works on, by name: the default's name for "", so the
    log names every call's bucket the same way however the request spelled it."""
    current().bucket = bucket
