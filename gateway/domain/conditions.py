"""Evaluation of preconditions against the current object, shared by drivers
whose storage does not evaluate them itself (local, memory)."""

from __future__ import annotations

from gateway.domain.errors import not_modified, object_not_found, precondition_failed
from gateway.domain.objects import Conditions, ObjectMeta


def check(key: str, conditions: Conditions, current: ObjectMeta | None, *, read: bool) -> None:
    """Raise PRECONDITION_FAILED (or NOT_MODIFIED for if_none_match on a read)
    unless current (None when missing) satisfies every condition."""
    if not conditions.any:
        return
    if conditions.if_match and (current is None or current.etag != conditions.if_match):
        raise precondition_failed(key=key, condition="if_match")
    if conditions.if_none_match:
        if conditions.if_none_match == "*":
            if current is not None:
                raise precondition_failed(key=key, condition="if_none_match")
        elif current is not None and current.etag == conditions.if_none_match:
            raise (
                not_modified(key=key)
                if read
                else precondition_failed(key=key, condition="if_none_match")
            )
    match = conditions.if_generation_match
    if match is not None:
        ok = current is None if match == 0 else current is not None and current.generation == match
        if not ok:
            raise precondition_failed(key=key, condition="if_generation_match")
    not_match = conditions.if_generation_not_match
    # As with HTTP's If-None-Match, a missing object differs from any generation.
    if not_match is not None and current is not None and current.generation == not_match:
        raise precondition_failed(key=key, condition="if_generation_not_match")


def check_existing(key: str, conditions: Conditions, current: ObjectMeta | None) -> ObjectMeta:
    """check() for a read, then the object itself: OBJECT_NOT_FOUND when missing
    (a failed condition is reported first, as for a missing object with if_match)."""
    check(key, conditions, current, read=True)
    if current is None:
        raise object_not_found(key=key)
    return current
