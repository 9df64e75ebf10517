"""What an HTTP store's answer to an object request means for the caller,
the same on S3 and GCS: 412 a precondition failed, 304 not modified, 416 a
range past the end, 404 no such object."""

from __future__ import annotations

from gateway.domain.errors import (
    GatewayError,
    not_modified,
    object_not_found,
    precondition_failed,
    range_not_satisfiable,
)


def object_status_error(status: int, *, key: str, condition: str) -> GatewayError | None:
    """The caller's error an object request's status names, if it names one;
    condition is the precondition the request carried."""
    if status == 412:
        return precondition_failed(key=key, condition=condition)
    if status == 304:
        return not_modified(key=key)
    if status == 416:
        return range_not_satisfiable(key=key)
    if status == 404:
        return object_not_found(key=key)
    return None
