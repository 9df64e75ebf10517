"""GetLifecycle's answer in the contract's terms."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration

from gateway.core.lifecycle_view import LifecycleView, Where
from storagegw.v1 import storage_pb2 as pb

_ENFORCEMENT = {
    Where.NATIVE: pb.LIFECYCLE_ENFORCEMENT_NATIVE,
    Where.GATEWAY: pb.LIFECYCLE_ENFORCEMENT_GATEWAY,
    Where.FALLBACK: pb.LIFECYCLE_ENFORCEMENT_GATEWAY_FALLBACK,
}


def _duration(seconds: float | None) -> Duration | None:
    if seconds is None:
        return None
    whole = int(seconds)
    return Duration(seconds=whole, nanos=int((seconds - whole) * 1e9))


def lifecycle_response(view: LifecycleView) -> pb.GetLifecycleResponse:
    return pb.GetLifecycleResponse(
        bucket=view.bucket,
        rules=[
            pb.LifecycleRule(
                id=shown.rule.id,
                prefix=shown.rule.prefix,
                expire_after=_duration(shown.rule.expire_after),
                transition_after=_duration(shown.rule.transition_after),
                storage_class=shown.rule.storage_class,
                abort_incomplete_uploads_after=_duration(shown.rule.abort_incomplete_uploads_after),
                enforcement=_ENFORCEMENT[shown.where],
                reason=shown.reason,
            )
            for shown in view.rules
        ],
        store_lifecycle=view.store_lifecycle,
        store_rules=[
            pb.StoreLifecycleRule(
                id=rule.id,
                prefix=rule.prefix,
                description=rule.description,
                managed=rule.managed,
                enabled=rule.enabled,
            )
            for rule in view.store_rules
        ],
        store_error=view.store_error,
    )
