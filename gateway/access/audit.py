"""The audit trail: one structured line per mutating call and per refusal,
on its own logger ("storagegw.audit") so it can be shipped and kept apart.

The fields travel as logging extras: the JSON log format writes each one,
the text format writes the message, which holds them all. No secrets, no
token contents: the principal's id and how it proved it, never its
credentials.
"""

from __future__ import annotations

import logging

from gateway.core.calllog import CallLog
from gateway.domain.errors import REASON_STATUS, Reason
from gateway.domain.identity import Principal

LOGGER_NAME = "storagegw.audit"
log = logging.getLogger(LOGGER_NAME)
# The extras each line carries (gateway/logs.py renders them in JSON).
FIELDS = (
    "principal", "proof", "method", "action", "bucket", "key", "outcome", "reason", "peer",
    "trace_id",
)  # fmt: skip


def enabled() -> bool:
    """Whether audit lines are written: a caller may skip gathering their
    fields when not."""
    return log.isEnabledFor(logging.INFO)


def record(
    *,
    principal: Principal,
    method: str,
    action: str,
    bucket: str,
    key: str,
    outcome: str,
    reason: str = "",
    peer: str = "",
    trace_id: str = "",
) -> None:
    """One audit line. method is the RPC or HTTP route ("Put", "GET"),
    action the policy's ("write"), outcome the answer as a gRPC status name
    on both fronts ("OK", "PERMISSION_DENIED"; the HTTP front maps its answer
    through the reason table), reason the error's Reason name ("" when it
    went through)."""
    if not log.isEnabledFor(logging.INFO):
        return
    where = f"{bucket}/{key}" if key else bucket
    message = (
        f"audit {outcome} {principal.id} ({principal.proof.value}) {method} {action} "
        f"{where or '-'}{f' {reason}' if reason else ''} from {peer or '-'}"
        f"{f' trace {trace_id}' if trace_id else ''}"
    )
    log.info(
        message,
        extra={
            "principal": principal.id,
            "proof": principal.proof.value,
            "method": method,
            "action": action,
            "bucket": bucket,
            "key": key,
            "outcome": outcome,
            "reason": reason,
            "peer": peer,
            "trace_id": trace_id,
        },
    )


def record_call(
    entry: CallLog, *, outcome: str, reason: str, peer: str, trace_id: str = ""
) -> None:
    """The audit line of a finished call, from what its record holds (both
    fronts call this at a call's end); trace_id that of its span, if traced.
    A call on many keys (DeleteObjects) gets one line per key instead, each
    with that key's own outcome."""
    lines = [
        (key, REASON_STATUS[Reason(key_reason)].grpc_code if key_reason else outcome, key_reason)
        for key, key_reason in entry.batch
    ] or [(entry.key, outcome, reason)]
    for key, line_outcome, line_reason in lines:
        record(
            principal=entry.principal,
            method=entry.method,
            action=entry.action,
            bucket=entry.bucket,
            key=key,
            outcome=line_outcome,
            reason=line_reason,
            peer=peer,
            trace_id=trace_id,
        )
