"""Each HTTP request the S3 client sends, reported to the driver's observer
(gateway/backends/observer.py) through botocore's events.

botocore emits before-send.s3.<Operation> with the signed request just before
it goes out, and response-received.s3.<Operation> once it is answered (or
failed), for every attempt, retries included, in the task that made the call:
so a context variable pairs each attempt's two events, whatever other calls
run in other tasks. An attempt cancelled mid-flight emits no second event and
is not reported as finished.
"""

from __future__ import annotations

import contextvars
from typing import Any

from gateway.backends.observer import ObservedRequest, StoreObserver, StoreRequest, split_url

SERVICE = "S3"
# The attempt in flight in this task, between its before-send and its
# response-received.
_in_flight: contextvars.ContextVar[ObservedRequest | None] = contextvars.ContextVar(
    "s3_request_in_flight", default=None
)


def _resend_count(headers: Any) -> int:
    """Attempts before this one, from botocore's amz-sdk-request header
    ("attempt=2; max=5"), which holds nothing secret."""
    value = headers.get("amz-sdk-request", b"")
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    for part in text.split(";"):
        name, _, number = part.strip().partition("=")
        if name == "attempt" and number.isdigit():
            return max(int(number) - 1, 0)
    return 0


class RequestReporter:
    """botocore event handlers reporting the requests of one driver's client."""

    def __init__(self, observer: StoreObserver, bucket: str) -> None:
        self._observer = observer
        self._bucket = bucket

    def register(self, events: Any) -> None:
        """Register on a client's event system (client.meta.events)."""
        events.register("before-send.s3", self.before_send)
        events.register("response-received.s3", self.response_received)

    def before_send(self, request: Any, event_name: str, **_: Any) -> None:
        # Only the method, the URL without its query (which may hold a
        # signature or an upload id) and the attempt number are read: never
        # a header that could carry a credential.
        scheme, host, port, path = split_url(request.url)
        observed = self._observer.request_started(
            StoreRequest(
                service=SERVICE,
                store_bucket=self._bucket,
                operation=event_name.rpartition(".")[2],
                method=request.method,
                scheme=scheme,
                host=host,
                port=port,
                path=path,
                resend_count=_resend_count(request.headers),
            )
        )
        _in_flight.set(observed)
        # None: botocore sends the request itself.

    def response_received(
        self, response_dict: Any, exception: BaseException | None, **_: Any
    ) -> None:
        observed = _in_flight.get()
        if observed is None:
            return
        _in_flight.set(None)
        status = None if response_dict is None else response_dict.get("status_code")
        observed.finished(status, exception)
