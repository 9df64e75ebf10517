"""The one server interceptor: authenticates each StorageService call, maps
errors to statuses and logs each RPC.

Every handler is wrapped here instead of repeating try/except in each one:
the call's credentials go to the Authenticator (gateway.access) before the
handler runs, and its principal into the call's record, where the guards at
the core's door find it; GatewayError becomes its gRPC status with
ErrorInfo; anything unexpected is logged with its traceback and answered
INTERNAL without internals; one log line per call records method, principal,
bucket, key, bytes, status and duration, and mutating calls and refusals
also get an audit line (gateway.access.audit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
from grpc.aio import ServicerContext

from gateway.access import audit
from gateway.access.authn import Authenticator, Unauthenticated
from gateway.core import calllog
from gateway.core.stream_limits import StreamLimits
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.tasks import wait_to_the_end
from gateway.rpc import messages, stream_guards
from gateway.rpc.credentials import credentials_of
from gateway.rpc.status import status_code, to_status

if TYPE_CHECKING:
    from gateway.telemetry.instruments import GatewayMetrics
    from gateway.telemetry.tracing import CallSpan, GatewayTracing

log = logging.getLogger("storagegw.access")
_errors = logging.getLogger("storagegw")

if TYPE_CHECKING:
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler

_INTERNAL = GatewayError(Reason.INTERNAL, "internal error; see the gateway's log")
# Calls that change what is stored (or hand on an access): audited however they end.
MUTATING = frozenset(
    {"Put", "StartUpload", "AbortUpload", "Delete", "DeleteObjects", "Copy", "SignUrl"}
)
_DENIALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
# Each status's name and number, looked up once: an Enum's .name and .value
# are Python-level descriptors, and a traced call's end reads them three times.
_NAMES = {code: code.name for code in grpc.StatusCode}
_NUMBERS = {code: code.value[0] for code in grpc.StatusCode}

Context = ServicerContext[Any, Any]


class _Outcome:
    __slots__ = ("code",)

    def __init__(self) -> None:
        self.code = grpc.StatusCode.OK


async def _authenticate(authenticator: Authenticator, context: Context) -> None:
    calllog.current().principal = await authenticator.authenticate(credentials_of(context))


async def _fail(context: ServicerContext[Any, Any], error: Exception, outcome: _Outcome) -> None:
    if context.cancelled():
        # The client went away; the error is a consequence (a cut-short stream).
        outcome.code = grpc.StatusCode.CANCELLED
        return
    if isinstance(error, GatewayError) and error.reason is not Reason.INTERNAL:
        gateway_error = error
    else:
        # A driver's INTERNAL error too: its message may name server paths or
        # storage internals, so it goes to the log and the client gets none.
        _errors.exception("unexpected error in %s", calllog.current().method)
        gateway_error = _INTERNAL
    outcome.code = status_code(gateway_error.reason)
    calllog.current().reason = str(gateway_error.reason)
    # grpc-stubs lacks the aio context's abort_with_status; it exists at run time.
    await context.abort_with_status(to_status(gateway_error))  # type: ignore[attr-defined]


def _finish(
    entry: calllog.CallLog,
    outcome: _Outcome,
    started: float,
    context: Context,
    metrics: GatewayMetrics | None,
    span: CallSpan | None,
) -> None:
    """Record the call (metrics, the audit line, the access line), then end its span."""
    try:
        seconds = time.perf_counter() - started
        status = _NAMES[outcome.code]
        if metrics is not None:
            metrics.rpc_finished(entry.method, status, entry.reason, seconds)
        # The audit line first: once the access line is out, both are. The
        # span's trace id only for it: most calls write no audit line.
        if (entry.method in MUTATING or outcome.code in _DENIALS) and audit.enabled():
            audit.record_call(
                entry,
                outcome=status,
                reason=entry.reason,
                peer=context.peer() or "",
                trace_id="" if span is None else span.trace_id,
            )
        # The line's fields are only gathered when it is written (not at the
        # WARNING level the benchmarks run at, say).
        if not log.isEnabledFor(logging.INFO):
            return
        log.info(
            "%s %s",
            entry.method,
            status,
            extra={
                "rpc_method": entry.method,
                "principal": entry.principal.id,
                "bucket": entry.bucket,
                "key": entry.key,
                "bytes": entry.bytes,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
            },
        )
    finally:
        # Last: the lines were written inside the span, and carry its ids.
        if span is not None:
            code = outcome.code
            span.end(entry, _NAMES[code], entry.reason, grpc_code=_NUMBERS[code])


class GatewayInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps the StorageService handlers (health and reflection pass through,
    unauthenticated); the streaming ones (Put, Get) also get the gateway's
    stream limits."""

    def __init__(
        self,
        service_prefix: str,
        limits: StreamLimits,
        max_message_size: int | None = None,
        authenticator: Authenticator | None = None,
        metrics: GatewayMetrics | None = None,
        tracing: GatewayTracing | None = None,
    ) -> None:
        self._authenticator: Authenticator = authenticator or Unauthenticated()
        # Duration and errors of each call, when metrics are on.
        self._metrics = metrics
        # A server span per call, when traces are on.
        self._tracing = tracing
        self._prefix = service_prefix
        # The service's name as spans carry it.
        self._service = service_prefix.strip("/")
        self._limits = limits
        self._max_message_size = max_message_size
        # The wrapped handler of each method, made on its first call: the
        # service's handlers never change, and making one costs more than a
        # small call's own work.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        name: str = handler_call_details.method
        if handler is None or not name.startswith(self._prefix):
            return handler
        cached = self._wrapped.get(name)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(name.rsplit("/", 1)[-1], handler)
        self._wrapped[name] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: Handler) -> Handler:
        # Requests are parsed and responses serialised inside the wrapped
        # handler (gateway/messages.py), so that their failures are statuses
        # with reasons and show in the access log; gRPC passes bytes.
        codec = messages.Codec(
            handler.request_deserializer, handler.response_serializer, self._max_message_size
        )
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, messages.unary_request(handler.unary_unary, codec))
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(
                    method,
                    stream_guards.guard_put(
                        self._limits,
                        messages.stream_request(handler.stream_unary, codec),  # type: ignore[arg-type]
                    ),
                )
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                # The servicer's Get is an async generator (grpc-stubs types it as sync).
                stream_guards.send_responses(
                    self._limits,
                    self._wrap_stream(
                        method,
                        stream_guards.guard_get(
                            self._limits,
                            messages.stream_response(handler.unary_stream, codec),  # type: ignore[arg-type]
                        ),
                    ),
                ),
            )
        return handler

    def _start_span(self, method: str, context: Context) -> CallSpan | None:
        if self._tracing is None:
            return None
        return self._tracing.start_rpc(self._service, method, context.invocation_metadata() or ())

    def _wrap_unary(
        self, method: str, behavior: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Any]:
        async def handler(request: Any, context: Context) -> Any:
            entry, outcome, started = calllog.start(method), _Outcome(), time.perf_counter()
            span = self._start_span(method, context)
            try:
                await _authenticate(self._authenticator, context)
                return await behavior(request, context)
            except (asyncio.CancelledError, grpc.aio.AbortError):
                outcome.code = grpc.StatusCode.CANCELLED
                raise
            except Exception as error:
                await _fail(context, error, outcome)
            finally:
                _finish(entry, outcome, started, context, self._metrics, span)

        return handler

    def _wrap_stream(
        self, method: str, behavior: Callable[..., AsyncIterator[Any]]
    ) -> Callable[..., Any]:
        async def handler(request: Any, context: Context) -> AsyncIterator[Any]:
            entry, outcome, started = calllog.start(method), _Outcome(), time.perf_counter()
            span = self._start_span(method, context)
            responses = behavior(request, context)
            try:
                await _authenticate(self._authenticator, context)
                async for response in responses:
                    yield response
            except (asyncio.CancelledError, grpc.aio.AbortError, GeneratorExit):
                outcome.code = grpc.StatusCode.CANCELLED
                raise
            except Exception as error:
                await _fail(context, error, outcome)
            finally:
                # Close the handler now, not whenever it is collected, so that its
                # files are released before the call counts as finished; and
                # record the call however the closing ends. One that ran to its
                # end, raised or never began has nothing left to close. One cut
                # short is closed to the end even if the call's task is
                # cancelled meanwhile: when its client goes away, a pending
                # write fails first and the closing begins, then grpc.aio
                # cancels the task, which would cut the closing short (a file
                # left open until the collector runs) and skip the record.
                try:
                    if outcome.code is grpc.StatusCode.CANCELLED:
                        await wait_to_the_end(responses.aclose())  # type: ignore[attr-defined]
                    else:
                        await responses.aclose()  # type: ignore[attr-defined]
                finally:
                    _finish(entry, outcome, started, context, self._metrics, span)

        return handler
