"""The running gateway: gRPC server, health, reflection, HTTP listener, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway import cleanup, dedup_sweep, lifecycle, logs, pending
from gateway.access.policy import Policy
from gateway.access.setup import Access, build_access
from gateway.bucket_setup import build_buckets
from gateway.config import Config
from gateway.core.buckets import Guard
from gateway.core.signing import UrlSigner
from gateway.core.stream_limits import StreamLimits
from gateway.core.upload_ids import UploadIds
from gateway.core.url_secret import load_or_create_secrets
from gateway.domain.dedup import DedupStats, SweepResult
from gateway.domain.errors import GatewayError
from gateway.http import server as http_server
from gateway.http.limits import Linger
from gateway.http.listener import ConnectionLimits, HttpListener
from gateway.http.probes import Readiness
from gateway.rpc import wire
from gateway.rpc.health import NOT_SERVING, SERVING, HealthServicer
from gateway.rpc.health_listener import HealthListener
from gateway.rpc.interceptors import GatewayInterceptor
from gateway.rpc.servicer import ServiceSettings, StorageServicer
from gateway.telemetry import export as telemetry_export
from gateway.telemetry.authn import InstrumentedAuthenticator
from gateway.telemetry.tracing import current_ids as current_trace_ids
from gateway.transport.certificates import CertificateFiles
from gateway.transport.grpc_credentials import server_credentials
from gateway.transport.http_context import ReloadingContext
from gateway.transport.settings import describe, is_loopback

log = logging.getLogger("storagegw")


# What gRPC may receive ahead for a stream the gateway is not reading (its
# HTTP/2 window). It bounds what a stream's client can push in before the
# gateway reads a message, refused streams' first messages included: with
# 1 MiB, 2,000 streams opened at once took the gateway's peak RSS up to 330
# MiB, with 256 KiB to 170 MiB (bench/: --only limits), with no measurable
# change in Put throughput here. A message being read opens the window to its
# size regardless.
STREAM_WINDOW = 256 * 1024


def channel_options(config: Config) -> list[tuple[str, int]]:
    """Server options; the bundled client uses matching limits."""
    return [
        ("grpc.max_receive_message_length", config.max_message_size),
        ("grpc.max_send_message_length", config.max_message_size),
        # Only workers share the port (gateway/workers.py); else a second
        # gateway on the same address must fail to start.
        ("grpc.so_reuseport", 0 if config.worker is None else 1),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # Larger socket reads: fewer wake-ups per MiB on big uploads.
        ("grpc.experimental.tcp_read_chunk_size", 1024 * 1024),
        # A fixed window per stream instead of BDP-probed growth: what a
        # stream may buffer in the gateway stays bounded however fast the
        # sender is (see STREAM_WINDOW).
        ("grpc.http2.bdp_probe", 0),
        ("grpc.http2.lookahead_bytes", STREAM_WINDOW),
        # Streams one client connection may have open; more wait in the client.
        ("grpc.max_concurrent_streams", config.max_streams_per_connection),
    ]


def policy_claims(policy: Policy | None) -> frozenset[str]:
    """The claims the policy's prefixes name ({claims.team}): a signed URL
    carries these of its signer's, and no others (gateway/core/url_principal.py)."""
    if policy is None:
        return frozenset()
    return frozenset(
        name.removeprefix("claims.")
        for grant in policy.grants
        for prefix in grant.prefixes
        for name in prefix.parts[1::2]  # literal, placeholder, literal, ...
        if name.startswith("claims.")
    )


def unreachable_url_base(config: Config) -> str | None:
    """The signed-URL base when it would name a wildcard address (0.0.0.0, ::),
    which no client can reach: STORAGE_BASE_URL unset on such a listener."""
    if config.base_url:
        return None
    host = config.http_listen.rpartition(":")[0].strip("[]")
    return config.public_base_url if host in ("0.0.0.0", "::") else None


def bucket_service_name(bucket: str) -> str:
    """Health service name of one bucket's backend."""
    return f"{wire.SERVICE_NAME}/{bucket}"


class Gateway:
    """One gateway process's servers. start(), then stop() (or serve())."""

    def __init__(self, config: Config, guards: Sequence[Guard] = ()) -> None:
        """guards: checked on every access, whatever route it came by
        (Buckets.open), after those of the access policy (config.access)."""
        self.config = config
        # None when no metrics are exported: then nothing is wrapped or recorded.
        self.telemetry = telemetry_export.build(config.telemetry)
        metrics = None if self.telemetry is None else self.telemetry.metrics
        # None when traces are off: no spans, and no trace ids in the logs.
        tracing = None if self.telemetry is None else self.telemetry.tracing
        if tracing is not None:
            logs.trace_ids = current_trace_ids
        # Authentication and the policy: their guards go first at the door.
        self.access: Access = build_access(config.access)
        authenticator = self.access.authenticator
        guards = (*self.access.guards, *guards)
        if metrics is not None:
            authenticator = InstrumentedAuthenticator(authenticator, metrics)
        # Upload policy rules name groups as the access policy's grants do.
        groups_of = None if self.access.policy is None else self.access.policy.groups_of
        self.buckets = build_buckets(config, guards, metrics, tracing, groups_of)
        # Where each bucket's lifecycle rules are enforced (ConfigError: nowhere).
        self.lifecycles = lifecycle.build_plans(config, self.buckets)
        url_secrets = load_or_create_secrets(config.url_secret, config.base_path)
        upload_ids = UploadIds(url_secrets, config.upload_lifetime)
        public_url = config.public_base_url
        self.signer = UrlSigner(
            url_secrets, public_url, config.url_expiration, config.url_max_expiration
        )
        self.signer.carried_claims = policy_claims(self.access.policy)
        self.health = HealthServicer()
        self.stream_limits = StreamLimits(
            config.max_streams, config.stream_idle_timeout, config.max_buffered_bytes
        )
        if self.telemetry is not None:
            self.telemetry.observe_stream_limits(self.stream_limits)
            self.telemetry.observe_dedup(lambda: self.dedup_stats)
        self.server = grpc.aio.server(
            interceptors=[
                GatewayInterceptor(
                    f"/{wire.SERVICE_NAME}/",
                    self.stream_limits,
                    config.max_message_size,
                    authenticator,
                    metrics,
                    tracing,
                )
            ],
            options=channel_options(config),
        )
        wire.add_storage_service(
            StorageServicer(
                self.buckets,
                self.signer,
                ServiceSettings(
                    chunk_size=config.chunk_size,
                    max_object_size=config.max_object_size,
                    unfinished_upload_caps=config.unfinished_upload_caps(),
                    max_message_size=config.max_message_size,
                    lifecycles=self.lifecycles,
                ),
                upload_ids,
            ),
            self.server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if config.access.reflection:
            reflection.enable_server_reflection(
                (wire.SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
            )
        tls = config.transport.tls
        # Re-read when they change: both listeners serve the latest certificate.
        self.tls_files = None if tls is None else CertificateFiles(tls)
        try:
            if self.tls_files is None:
                self.grpc_port = self.server.add_insecure_port(config.listen)
            else:
                credentials = server_credentials(self.tls_files)
                self.grpc_port = self.server.add_secure_port(config.listen, credentials)
        except RuntimeError:  # grpcio raises where older versions returned 0
            self.grpc_port = 0
        if self.grpc_port == 0:
            raise OSError(f"GATEWAY_LISTEN: cannot listen on {config.listen}")
        # Health alone, in the clear, for probes the gRPC port's mTLS would refuse.
        self.health_listener = None
        if config.health_listen:
            self.health_listener = HealthListener(
                config.health_listen, self.health, reflect=config.access.reflection
            )
        self.http_port = 0
        self._http: HttpListener | None = None
        # The health probe and the first worker's sweeps, cancelled at stop.
        self._tasks: list[asyncio.Task[None]] = []
        # Each dedup bucket's statistics as its last sweep found them (the gauges).
        self.dedup_stats: dict[str, DedupStats] = {}
        self._stopping = False

    async def start(self) -> None:
        for setting, address in self.config.transport.insecure_listens:
            log.warning(
                "%s=%s: serving in the clear with no authentication (GATEWAY_ALLOW_INSECURE=1): "
                "anyone who reaches it can read, write and delete every bucket",
                setting,
                address,
            )
        # Stores that presign (S3, GCS) hand out URLs of their own.
        signed_here = [n for n, b in self.buckets if b.capabilities.presigner is None]
        if signed_here and (unreachable := unreachable_url_base(self.config)):
            log.warning(
                "STORAGE_BASE_URL is unset and GATEWAY_HTTP_LISTEN=%s listens on every "
                "address: signed URLs of bucket(s) %s would begin with %s, which clients "
                "cannot reach; set STORAGE_BASE_URL to the address they use",
                self.config.http_listen,
                ", ".join(signed_here),
                unreachable,
            )
        metrics_listen = self.config.telemetry.metrics_listen
        if metrics_listen is not None and not is_loopback(metrics_listen):
            log.warning(
                "GATEWAY_METRICS_LISTEN=%s: the metrics listener is plain HTTP with no "
                "authentication, and its metrics name buckets and principals",
                metrics_listen,
            )
        await self._probe_all()
        if self.telemetry is not None:
            self.telemetry.serve()
        await self.server.start()
        if self.health_listener is not None:
            await self.health_listener.start()
        host, _, port = self.config.http_listen.rpartition(":")
        app = http_server.make_app(
            self.buckets,
            self.signer,
            chunk_size=self.config.chunk_size,
            max_object_size=self.config.max_object_size,
            idle_timeout=self.config.stream_idle_timeout,
            stream_limits=self.stream_limits,
            metrics=None if self.telemetry is None else self.telemetry.metrics,
            tracing=None if self.telemetry is None else self.telemetry.tracing,
            readiness=self.readiness,
            linger=Linger(self.config.http_linger_bytes, self.config.http_linger_time),
        )
        limits = ConnectionLimits(
            self.config.http_keepalive_timeout, self.config.http_max_connections
        )
        tls = None if self.tls_files is None else ReloadingContext(self.tls_files).context
        try:
            self._http = await HttpListener.start(
                app, host, int(port), limits, tls, reuse_port=self.config.worker is not None
            )
            self.http_port = self._http.port
        except OSError as error:
            await self.server.stop(None)
            if self.health_listener is not None:
                await self.health_listener.stop(None)
            if self.telemetry is not None:
                await self.telemetry.shutdown()
            raise OSError(
                f"GATEWAY_HTTP_LISTEN: cannot listen on {self.config.http_listen}: "
                f"{error.strerror or error}"
            ) from None
        if not self.config.base_url:
            # Listening on port 0 binds a real port only now; URLs must name it.
            scheme = self.config.transport.scheme
            self.signer.base_url = f"{scheme}://{host}:{self.http_port}"
        self._tasks.append(asyncio.create_task(self._probe_loop(), name="health-probe"))
        if not self.config.worker:  # of several workers, the first one sweeps
            upkeep = lifecycle.maintain_forever(
                self.buckets, self.lifecycles, self.cleanup_once, self.config.cleanup_interval
            )
            self._tasks.append(asyncio.create_task(upkeep, name="cleanup"))
            if self.config.pending.interval:
                sweep = pending.sweep_forever(self.sweep_pending_once, self.config.pending.interval)
                self._tasks.append(asyncio.create_task(sweep, name="pending-sweep"))
            if self.config.dedup_sweep_interval:
                collect = dedup_sweep.sweep_forever(
                    self.buckets, self.config.dedup_sweep_interval, self.note_dedup_sweep
                )
                self._tasks.append(asyncio.create_task(collect, name="dedup-sweep"))
        names = ", ".join(f"{n} ({b.kind})" for n, b in self.buckets)
        if self.health_listener is not None:
            log.info(
                "serving gRPC health only, in the clear, on %s:%d",
                self.config.health_listen.rpartition(":")[0],
                self.health_listener.port,
            )
        log.info(
            "serving gRPC on %s:%d and signed URLs on %s:%d; buckets: %s; default bucket %s; %s",
            self.config.listen.rpartition(":")[0],
            self.grpc_port,
            host,
            self.http_port,
            names,
            self.buckets.default,
            describe(self.config.transport.tls),
        )

    def readiness(self) -> Readiness:
        """/readyz's answer, read from the gRPC health service's state (which
        _probe_all and stop() keep): both fronts report the same thing."""
        failing = tuple(
            name
            for name, _ in self.buckets
            if self.health.status(bucket_service_name(name)) != SERVING
        )
        return Readiness(
            draining=self._stopping or self.health.shutting_down, failing_buckets=failing
        )

    async def _probe_all(self) -> bool:
        healthy = True
        for name, backend in self.buckets:
            try:
                await backend.probe()
                status = SERVING
            except GatewayError as error:
                log.warning("bucket %s: health probe failed: %s", name, error.message)
                status = NOT_SERVING
                healthy = False
            await self.health.set(bucket_service_name(name), status)
        overall = SERVING if healthy and not self._stopping else NOT_SERVING
        await self.health.set("", overall)
        await self.health.set(wire.SERVICE_NAME, overall)
        return healthy

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.health_interval)
            await self._probe_all()

    async def cleanup_once(self) -> dict[str, int]:
        """cleanup.sweep_stale of the gateway's buckets, each by its abort
        rule: {bucket: uploads aborted}."""
        ages = {name: plan.abort_age for name, plan in self.lifecycles.items()}
        return await cleanup.sweep_stale(self.buckets, self.config, ages)

    async def expire_once(self, now: float | None = None) -> dict[str, lifecycle.ExpiryCounts]:
        """One run of the lifecycle rules the gateway enforces (gateway/lifecycle.py)."""
        return await lifecycle.expire_once(self.buckets, self.lifecycles, now)

    async def sweep_pending_once(self) -> dict[str, pending.SweepCounts]:
        """One sweep of pending direct uploads (gateway/pending.py)."""
        config = self.config
        return await pending.sweep_once(self.buckets, config.pending, config.max_object_size)

    def note_dedup_sweep(self, bucket: str, result: SweepResult) -> None:
        """A dedup sweep's statistics, for the gauges."""
        self.dedup_stats[bucket] = result.stats

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, refuse new calls, let in-flight ones finish within
        grace, then cut them: gRPC and HTTP side by side, on one deadline."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.health.enter_graceful_shutdown()
        grace = self.config.shutdown_grace if grace is None else grace
        log.info("shutting down: finishing in-flight calls (grace %.1f s)", grace)
        http_stopped = None
        if self._http is not None:
            http_stopped = asyncio.create_task(self._http.stop(grace), name="http-stop")
        # Called here rather than in a task of its own: gRPC stops listening in
        # this very step, right after health turned NOT_SERVING, so that a
        # client that saw NOT_SERVING cannot slip a new call in (it would be
        # cancelled, not refused).
        await self.server.stop(grace)
        if self.health_listener is not None:
            # After the main port: probes see NOT_SERVING until the gateway is gone.
            await self.health_listener.stop(grace)
        if http_stopped is not None:
            await http_stopped
        await self.buckets.close()
        await self.access.close()
        if self.telemetry is not None:
            await self.telemetry.shutdown()
        log.info("stopped")
