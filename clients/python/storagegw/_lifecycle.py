"""Reading a bucket's lifecycle rules (get_lifecycle), with its result types."""

from __future__ import annotations

from dataclasses import dataclass, field

from storagegw._base import ClientBase
from storagegw._effects import Call, Flow
from storagegw._op import operation
from storagegw.v1 import storage_pb2

__all__ = ["Lifecycle", "LifecycleRule", "StoreLifecycleRule", "get_lifecycle"]

_WHERE = {
    storage_pb2.LIFECYCLE_ENFORCEMENT_NATIVE: "native store",
    storage_pb2.LIFECYCLE_ENFORCEMENT_GATEWAY: "gateway task",
    storage_pb2.LIFECYCLE_ENFORCEMENT_GATEWAY_FALLBACK: "gateway task (store does not report it)",
}


def _seconds(message: storage_pb2.LifecycleRule, name: str) -> float | None:
    if not message.HasField(name):  # type: ignore[arg-type]
        return None
    value = getattr(message, name)
    return float(value.seconds + value.nanos / 1e9)


@dataclass(frozen=True, slots=True)
class LifecycleRule:
    """A rule in force: ages in seconds (None: not part of the rule), and
    what enforces it ("native store", "gateway task"...) and why."""

    id: str
    prefix: str
    expire_after: float | None
    transition_after: float | None
    storage_class: str
    abort_incomplete_uploads_after: float | None
    enforced_by: str
    reason: str = ""

    @classmethod
    def from_proto(cls, message: storage_pb2.LifecycleRule) -> LifecycleRule:
        return cls(
            message.id,
            message.prefix,
            _seconds(message, "expire_after"),
            _seconds(message, "transition_after"),
            message.storage_class,
            _seconds(message, "abort_incomplete_uploads_after"),
            _WHERE.get(message.enforcement, "unknown"),
            message.reason,
        )


@dataclass(frozen=True, slots=True)
class StoreLifecycleRule:
    """A rule of the store's own configuration (managed: the gateway's)."""

    id: str
    prefix: str
    description: str
    managed: bool
    enabled: bool


@dataclass(frozen=True, slots=True)
class Lifecycle:
    bucket: str
    rules: list[LifecycleRule] = field(default_factory=list)
    store_lifecycle: bool = False
    store_rules: list[StoreLifecycleRule] = field(default_factory=list)
    store_error: str = ""


@operation()
def get_lifecycle(self: ClientBase, *, bucket: str | None = None) -> Flow[Lifecycle]:
    """The bucket's lifecycle rules in force and where each is enforced,
    with the rules its store reports (an administrative call)."""
    request = storage_pb2.GetLifecycleRequest(bucket=self._bucket(bucket))
    return _get(request, self.timeout)


def _get(request: storage_pb2.GetLifecycleRequest, timeout: float | None) -> Flow[Lifecycle]:
    response: storage_pb2.GetLifecycleResponse = yield Call("GetLifecycle", request, timeout)
    return Lifecycle(
        response.bucket,
        [LifecycleRule.from_proto(rule) for rule in response.rules],
        response.store_lifecycle,
        [
            StoreLifecycleRule(r.id, r.prefix, r.description, r.managed, r.enabled)
            for r in response.store_rules
        ],
        response.store_error,
    )
