"""The core's Buckets made from the configuration: each bucket's driver
(reporting its store requests as spans when traces are on, wrapped to be
metered when metrics are), its SHA-256 choice, upload policy and scanner.
Part of the composition root (gateway/server.py builds the rest)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway.cdn_config import cdn_signers, purging
from gateway.config import Config
from gateway.core import sniffing
from gateway.core.buckets import Buckets, Guard
from gateway.domain.identity import Principal
from gateway.layers.dedup.names import RESERVED_PREFIX
from gateway.scan_config import scan_policies
from gateway.telemetry.backend import InstrumentedBackend
from gateway.telemetry.instruments import GatewayMetrics
from gateway.telemetry.store_spans import StoreSpans
from gateway.telemetry.tracing import GatewayTracing


def build_buckets(
    config: Config,
    guards: Sequence[Guard],
    metrics: GatewayMetrics | None,
    tracing: GatewayTracing | None,
    groups_of: Callable[[Principal], frozenset[str]] | None,
) -> Buckets:
    """The configured buckets behind the door guarded by guards; groups_of:
    the groups the access policy gives a principal, which upload policy
    rules name as its grants do (None: no policy file)."""
    # With traces on, each driver reports its store requests and fsyncs as spans.
    backends = {
        name: bucket.build(None if tracing is None else StoreSpans(tracing, name, bucket.backend))
        for name, bucket in config.buckets.items()
    }
    if metrics is not None:
        # Every backend call is recorded by this wrapper, whatever route it came by.
        backends = {n: InstrumentedBackend(b, n, metrics, tracing) for n, b in backends.items()}
    # A bucket whose CDN purges: after every write and delete, whatever route it came by.
    reporter = None if metrics is None else metrics.cdn_purge_reporter
    backends = purging(config.buckets, backends, reporter)
    policies = config.upload_policies()
    if any(policy.ever_sniffs for policy in policies.values()):
        sniffing.check()  # libmagic1 is there, or the gateway does not start
    return Buckets(
        backends,
        config.default_bucket,
        guards,
        config.sha256_choices(),
        scan=scan_policies(config.buckets, backends),
        upload_policies=policies,
        groups_of=groups_of,
        cdn=cdn_signers(config.buckets),
        reserved={name: RESERVED_PREFIX for name, b in config.buckets.items() if b.dedup},
    )
