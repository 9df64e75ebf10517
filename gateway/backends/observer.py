"""What a driver tells an observer of the work it does for a call: each HTTP
request a remote driver sends to its store, each fsync the local driver
waits for.

The composition root builds each driver with a StoreObserver (the telemetry
package's, which makes spans of what it hears) or with None, and a driver
built with None reports nothing and pays nothing. A driver knows nothing of
what the observer does with a report; it only takes care that a report holds
nothing secret: no query string (a presigned or resumable-session URL's is a
credential), no header.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """One HTTP request to a store: one attempt (a retry is another request)."""

    # The store's API, as a span names it ("S3", "GCS").
    service: str
    # The store's bucket the driver serves.
    store_bucket: str
    # The store's name for the operation ("PutObject"), "" when its API has none.
    operation: str
    # GET, PUT...
    method: str
    scheme: str
    host: str
    port: int | None
    # The URL's path, never its query string. It may name an object's key.
    path: str
    # How many times this request was sent before (0: the first attempt).
    resend_count: int = 0


class ObservedRequest(Protocol):
    """A request reported as started, to be reported as finished once."""

    def finished(self, status: int | None, error: BaseException | None = None) -> None:
        """It ended with an HTTP status, or without one (error: what was raised)."""


class StoreObserver(Protocol):
    def request_started(self, request: StoreRequest) -> ObservedRequest | None:
        """A request is about to be sent; None: no need to report its end."""

    def fsynced(self, path: str, started_ns: int, ended_ns: int) -> None:
        """An fsync of the file or directory at path, from started_ns to
        ended_ns (time.time_ns())."""


def split_url(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) of url, its query string and fragment dropped."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme, parts.hostname or "", port, parts.path or "/"


def timed_fsync(observer: StoreObserver | None, fd: int, path: str) -> None:
    """os.fsync(fd) of the file or directory at path, reported to observer."""
    if observer is None:
        os.fsync(fd)
        return
    started = time.time_ns()
    os.fsync(fd)
    observer.fsynced(path, started, time.time_ns())
