"""Each HTTP request the GCS client sends, reported to the driver's observer
(gateway/backends/observer.py).

google-cloud-storage sends its requests through the driver's requests
session, and every one of them (retries and credential refreshes included)
through the session's transport adapter: an adapter that reports what it
sends sees them all. It runs in the driver's worker threads, which carry the
calling task's context (GcsContext.submit).
"""

from __future__ import annotations

from typing import Any

import requests.adapters

from gateway.backends.observer import StoreObserver, StoreRequest, split_url

SERVICE = "GCS"


class ObservedAdapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter reporting each request it sends: its method and URL
    without the query string (a resumable session's id is a credential),
    never a header."""

    def __init__(self, observer: StoreObserver, bucket: str, pool_size: int) -> None:
        # As the driver's plain adapter: one pooled connection per thread.
        super().__init__(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self._observer = observer
        self._bucket = bucket

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        scheme, host, port, path = split_url(request.url or "")
        observed = self._observer.request_started(
            StoreRequest(
                service=SERVICE,
                store_bucket=self._bucket,
                operation="",
                method=request.method or "",
                scheme=scheme,
                host=host,
                port=port,
                path=path,
            )
        )
        if observed is None:
            return super().send(request, *args, **kwargs)
        try:
            response = super().send(request, *args, **kwargs)
        except BaseException as error:
            observed.finished(None, error)
            raise
        observed.finished(response.status_code)
        return response
