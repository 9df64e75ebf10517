"""The gateway's HTTP listener: serves signed URLs (see gateway/core/signing.py).

One route, /v1/b/{bucket}/o/{key}, beside the probes /healthz and /readyz
(gateway/http/probes.py, unsigned):
- GET/HEAD stream the object through the core's read (gateway.core.objects,
  as gRPC's Get), honouring one "Range: bytes=..." (206, or 416 with
  "Content-Range: bytes */size"); a multi-range header gets the whole object
  (200). download URLs add Content-Disposition: attachment.
- PUT stores the body through gateway.core.ingest.store (checksummed, committed
  only when whole), bounded by the URL's max size and the gateway's.
- POST stores the "file" field of an HTML form the same way, also bounded
  below by the URL's min size (gateway/http/form.py).

Status codes: 400 invalid key; 403 when the signature does not allow the
request (expired, tampered, other object or method, missing parameters) and
for a PUT or POST whose Content-Type differs from the one the URL binds (it is part of
what was signed); 404 missing object or bucket; 413 too large (checked against
Content-Length before anything is read, then as bytes arrive); 408 when a body
sends nothing for the idle timeout; other gateway errors map through the one
reason table, gateway.domain.errors.REASON_STATUS (OBJECT_TOO_SMALL: 400).
Error bodies are short plain text with the reason in the X-Sgw-Reason header.

An upload is checked (signature, key, bucket, content type, declared size)
before its body is asked for: `Expect: 100-continue` gets its 100 only then,
and a refused upload's connection is closed without asking for its body (one
sent regardless is drained within GATEWAY_HTTP_LINGER_BYTES/_TIME). Reads
and writes are bounded by the idle timeout (gateway/http/limits.py); the
connections themselves by gateway/http/listener.py.

Signed URLs carry their signature in the query string, so nothing here logs a
query string: the access log writes method, path, status, size and time only.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import ClientPayloadError, web
from aiohttp.abc import AbstractAccessLogger

from gateway.access import audit
from gateway.core import calllog
from gateway.core.buckets import Action, Buckets, Target
from gateway.core.ingest import Expected, Incoming, wants_sha256
from gateway.core.objects import Objects, Readable
from gateway.core.scanned_writes import store_checked
from gateway.core.signing import SignatureError, UrlSigner, VerifiedRequest
from gateway.core.stream_limits import StreamLimits
from gateway.core.upload_checks import bounded, upload_inspectors
from gateway.domain.errors import REASON_STATUS, GatewayError, Reason
from gateway.domain.keys import validate_key
from gateway.domain.media_types import validate_content_type
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, WriteOptions
from gateway.http.form import MAX_FIELD_BYTES, MAX_FIELDS, at_least, read_form
from gateway.http.limits import (
    Linger,
    SizeLimit,
    answer_then_drain,
    body_is_coming,
    expect_nothing_yet,
    idle_bounded,
    send_continue,
    size_limit,
    write_within_idle,
)
from gateway.http.objects import object_headers, parse_range
from gateway.http.probes import HEALTHZ, READYZ, ReadinessSource, add_routes
from gateway.telemetry.instruments import GatewayMetrics
from gateway.telemetry.tracing import GatewayTracing

log = logging.getLogger(__name__)
access_log = logging.getLogger("gateway.http.access")

DEFAULT_CHUNK_SIZE = 1024 * 1024
DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_LINGER = Linger()
REASON_HEADER = "X-Sgw-Reason"
# The most a form adds to the object's bytes: its fields and their boundaries.
MAX_FORM_OVERHEAD = MAX_FIELDS * (MAX_FIELD_BYTES + 512) + 4096

_BUCKETS = web.AppKey("buckets", Buckets)
_OBJECTS = web.AppKey("objects", Objects)
_SIGNER = web.AppKey("signer", UrlSigner)
_CHUNK_SIZE = web.AppKey("chunk_size", int)
_MAX_SIZE = web.AppKey("max_object_size", int)  # absent: no gateway limit
_STREAM_LIMITS = web.AppKey("stream_limits", StreamLimits)  # absent: none
_IDLE = web.AppKey("idle_timeout", float)
_LINGER = web.AppKey("linger", Linger)
_METRICS = web.AppKey("metrics", GatewayMetrics)  # absent: metrics off
_TRACING = web.AppKey("tracing", GatewayTracing)  # absent: traces off

_METHODS = ("GET", "HEAD", "PUT", "POST")


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without query strings (they hold URL signatures)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path in (HEALTHZ, READYZ) and response.status == 200:
            return  # a probe every few seconds would bury the requests that matter
        self.logger.info(
            '%s "%s %s" %d %d %.3fs',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )


def make_app(
    buckets: Buckets,
    signer: UrlSigner,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_object_size: int | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    stream_limits: StreamLimits | None = None,
    metrics: GatewayMetrics | None = None,
    tracing: GatewayTracing | None = None,
    readiness: ReadinessSource | None = None,
    linger: Linger = DEFAULT_LINGER,
) -> web.Application:
    """The signed-URL application; serve it with gateway.http.listener.HttpListener.
    idle_timeout bounds the wait for each read of a body and each write of an answer.
    stream_limits (the gRPC server's) also admits each GET, PUT and POST, so that
    one cap and one byte budget hold for both listeners. metrics records each
    request's duration and outcome, tracing a span of each. readiness, when
    given, serves /healthz and /readyz. linger bounds the drain of a refused
    upload's body."""
    app = web.Application()
    if metrics is not None:
        app[_METRICS] = metrics
    if tracing is not None:
        app[_TRACING] = tracing
    if stream_limits is not None:
        app[_STREAM_LIMITS] = stream_limits
    app[_BUCKETS] = buckets
    app[_OBJECTS] = Objects(buckets)
    app[_SIGNER] = signer
    app[_CHUNK_SIZE] = chunk_size
    app[_IDLE] = idle_timeout
    app[_LINGER] = linger
    if max_object_size is not None:
        app[_MAX_SIZE] = max_object_size
    app.router.add_route(
        "*", "/v1/b/{bucket}/o/{key:.+}", _handle, expect_handler=expect_nothing_yet
    )
    if readiness is not None:
        add_routes(app, readiness)
    return app


def _error(status: int, reason: Reason | str, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", headers={REASON_HEADER: str(reason)})


def _gateway_error(exc: GatewayError) -> web.Response:
    if exc.reason == Reason.INTERNAL:
        # A driver's own INTERNAL may name server paths: logged, not sent.
        log.error("signed URL request failed: %s", exc.message)
        return _error(500, Reason.INTERNAL, "internal error; see the gateway's log")
    response = _error(REASON_STATUS[exc.reason].http_status, exc.reason, exc.message)
    if retry_after := exc.metadata.get("retry_after_s"):
        response.headers["Retry-After"] = retry_after
    return response


async def _handle(request: web.Request) -> web.StreamResponse:
    method = request.method
    if method not in _METHODS:
        raise web.HTTPMethodNotAllowed(method, list(_METHODS))
    entry = calllog.start(f"HTTP {method}")
    outcome, reason, started = "CANCELLED", "", time.perf_counter()
    tracing = request.app.get(_TRACING)
    span = None if tracing is None else tracing.start_http(method, request.headers)
    try:
        response = await _answer(request, method)
        outcome, reason = _outcome(response)
    finally:
        # A request cut short by its client (no answer) counts as 499, as nginx has it.
        status = 499 if outcome == "CANCELLED" else response.status
        if method in ("PUT", "POST") or outcome in _DENIALS:
            trace_id = "" if span is None else span.trace_id
            audit.record_call(
                entry, outcome=outcome, reason=reason, peer=request.remote or "", trace_id=trace_id
            )
        if (metrics := request.app.get(_METRICS)) is not None:
            metrics.http_finished(method, status, reason, time.perf_counter() - started)
        if span is not None:
            span.end(entry, outcome, reason, http_status=status)
    if response.status >= 400 and not request.content.is_eof():
        # A refused upload: the connection ends. A body on its way is drained
        # (within bounds) so that the client reads the answer; one the client
        # waits to be asked for is never asked for.
        if body_is_coming(request):
            await answer_then_drain(request, response, request.app[_LINGER])
        else:
            response.force_close()
    return response


_DENIALS = ("UNAUTHENTICATED", "PERMISSION_DENIED")


def _outcome(response: web.StreamResponse) -> tuple[str, str]:
    """(the answer as a gRPC status name, the audit's vocabulary on both
    fronts; its reason)."""
    if response.status < 400:
        return "OK", ""
    reason = response.headers.get(REASON_HEADER, "")
    try:
        return REASON_STATUS[Reason(reason)].grpc_code, reason
    except ValueError:  # an answer of aiohttp's own
        return str(response.status), reason


async def _answer(request: web.Request, method: str) -> web.StreamResponse:
    app = request.app
    bucket = request.match_info["bucket"]
    key = request.match_info["key"]
    calllog.note(bucket, key, (Action.READ if method in ("GET", "HEAD") else Action.WRITE).value)
    try:
        validate_key(key)
        for name in request.query:
            if name.lower().startswith("x-sgw-") and len(request.query.getall(name)) > 1:
                raise SignatureError(f"signed URL: repeated parameter {name}")
        verified = app[_SIGNER].verify(method, bucket, key, request.query)
        # The guards check the signer's grant as it is now.
        calllog.current().principal = verified.signer
        serve: Callable[[], Awaitable[web.StreamResponse]]
        # A request is refused (bucket, guards) before it is admitted.
        if method in ("GET", "HEAD"):
            readable = app[_OBJECTS].reading(bucket, key)
            serve = functools.partial(_get, request, readable, verified)
        else:
            target = app[_BUCKETS].open(bucket, key, Action.WRITE)
            upload = _put if method == "PUT" else _post
            serve = functools.partial(upload, request, target, verified)
        limits = app.get(_STREAM_LIMITS)
        if limits is None or method == "HEAD":  # a HEAD holds no stream
            return await serve()
        with limits.serving():
            return await serve()
    except GatewayError as exc:
        return _gateway_error(exc)
    except Exception:
        log.exception("signed URL %s %s failed", method, request.path)
        return _error(500, Reason.INTERNAL, "internal error")


# --- GET / HEAD --------------------------------------------------------------


async def _get(
    request: web.Request, readable: Readable, verified: VerifiedRequest
) -> web.StreamResponse:
    """GET and HEAD: the core's read, as gRPC's Get, of the Range asked for."""
    wanted = parse_range(request.headers.get("Range"))
    read = await readable.read_range(wanted)
    reader, size = read.reader, read.size
    if reader is None:
        refusal = _error(
            416, Reason.INVALID_RANGE, f"range not satisfiable: object is {size} bytes"
        )
        refusal.headers["Content-Range"] = f"bytes */{size}"
        return refusal
    try:
        headers = object_headers(reader.meta, verified)
        status = 200
        if wanted is not None:
            status = 206
            headers["Content-Range"] = f"bytes {reader.start}-{reader.end - 1}/{size}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = reader.end - reader.start
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        idle = request.app[_IDLE]
        entry = calllog.current()
        try:
            async for chunk in reader.chunks(request.app[_CHUNK_SIZE]):
                if not await write_within_idle(request, response, chunk, idle):
                    log.info("GET %s: the client took nothing for %g s; cut", request.path, idle)
                    break
                entry.bytes += len(chunk)
        except ConnectionError:
            log.debug("client went away during GET %s", request.path)
        except Exception:
            # Headers are out: all we can do is cut the response short.
            log.exception("GET %s failed mid-stream", request.path)
            if request.transport is not None:
                request.transport.close()
        return response
    finally:
        await reader.close()


# --- PUT -------------------------------------------------------------------------


async def _put(request: web.Request, target: Target, verified: VerifiedRequest) -> web.Response:
    sent_type = request.headers.get("Content-Type")
    if verified.content_type and sent_type != verified.content_type:
        return _error(
            403,
            Reason.PERMISSION_DENIED,
            "signed URL: Content-Type must be exactly the one the URL was signed with",
        )
    validate_content_type(sent_type or "")
    limit = _limit(request, verified)
    declared = request.content_length
    if limit is not None and declared is not None and declared > limit.size:
        raise limit.exceeded(f"object of {declared} bytes")
    options = WriteOptions(
        content_type=verified.content_type or sent_type or DEFAULT_CONTENT_TYPE,
        size_hint=declared,
    )
    upload_inspectors(target, options.content_type, {}, declared)  # refusals before 100-continue
    await send_continue(request)
    chunks = idle_bounded(
        request.content.iter_chunked(request.app[_CHUNK_SIZE]), request.app[_IDLE]
    )
    return await _store(request, target, verified, options, chunks, Expected(size=declared))


# --- POST (HTML form) ----------------------------------------------------------------


async def _post(request: web.Request, target: Target, verified: VerifiedRequest) -> web.Response:
    limit = _limit(request, verified)
    declared = request.content_length
    if limit is not None and declared is not None and declared > limit.size + MAX_FORM_OVERHEAD:
        # The body holds the object plus form fields and boundaries, so all
        # that is known of the file is that it is too large.
        raise limit.exceeded(
            f"the form's file (the form is {declared} bytes, its other fields "
            f"at most {MAX_FORM_OVERHEAD})"
        )
    await send_continue(request)
    form = await read_form(request, verified.content_type, request.app[_IDLE])
    validate_content_type(form.content_type or "")
    options = WriteOptions(content_type=form.content_type or DEFAULT_CONTENT_TYPE)
    chunks = form.chunks(request.app[_CHUNK_SIZE])
    if verified.min_size:
        chunks = at_least(chunks, verified.min_size)
    return await _store(request, target, verified, options, chunks, Expected())


# --- both uploads ----------------------------------------------------------------------


def _limit(request: web.Request, verified: VerifiedRequest) -> SizeLimit | None:
    return size_limit(verified.max_size, request.app.get(_MAX_SIZE))


async def _store(
    request: web.Request,
    target: Target,
    verified: VerifiedRequest,
    options: WriteOptions,
    chunks: AsyncIterator[bytes],
    expected: Expected,
) -> web.Response:
    """Store the upload past its bucket's upload policy, with a SHA-256 if its bucket's choice
    is "always" (a URL cannot ask for one); answer with the object's JSON description."""
    limit = _limit(request, verified)
    max_size = None if limit is None else limit.size
    sha256 = wants_sha256(target.sha256, requested=False, expected=expected)
    inspectors = upload_inspectors(target, options.content_type, {}, options.size_hint)
    incoming = Incoming(chunks, expected, max_size, with_sha256=sha256, inspectors=inspectors)
    try:
        meta = await store_checked(target, options, incoming)
    except GatewayError as exc:
        ours = limit is not None and bounded(limit.size, inspectors) == limit.size
        if exc.reason == Reason.OBJECT_TOO_LARGE and limit is not None and ours:
            # store() knows only how far the body got, not its size, nor the limit's source.
            raise limit.exceeded() from None
        raise
    except (ConnectionError, ClientPayloadError):
        # Nothing was stored (store aborts); the client will not see this.
        log.info("client went away during %s %s", request.method, request.path)
        return _error(400, Reason.INVALID_STREAM, "request body incomplete")
    calllog.current().bytes = meta.size
    body = {
        "bucket": verified.bucket,
        "key": meta.key,
        "size": meta.size,
        "etag": meta.etag,
        "generation": meta.generation,
        "content_type": meta.content_type,
        "crc32c": meta.crc32c,
        "sha256": meta.sha256.hex() if meta.sha256 is not None else "",
    }
    etag = meta.etag if meta.etag.startswith('"') else f'"{meta.etag}"'
    return web.json_response(body, headers={"ETag": etag})
