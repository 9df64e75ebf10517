"""Where each lifecycle rule of a bucket is enforced: by the store itself
(its native lifecycle configuration, LifecycleInstaller) or by the
gateway's periodic task (gateway/core/lifecycle_sweep.py).

A rule goes to the store when it asks to (native, the default), the
driver has a `capabilities.lifecycle` that expresses it, and, if it
expires or moves objects, its prefix does not cover one of the gateway's
reserved prefixes: a store's rule cannot leave out part of its prefix, and
the gateway's records, its staging prefix and `.cas/` must never expire.
The gateway's task lists the prefix and skips them. What only a store can do
(a transition; aborting the uploads under a prefix) and it cannot is a
configuration error, named by the rule's setting.

GATEWAY_STALE_UPLOAD_AGE (else GATEWAY_UPLOAD_LIFETIME) is the default rule
of every bucket that keeps unfinished uploads: abort them after that age,
for the whole bucket, by the gateway's cleanup every
GATEWAY_CLEANUP_INTERVAL. A bucket's own rule with prefix "" and
abort_incomplete_uploads_after replaces it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.backends.base import Backend
from gateway.core.buckets import Target
from gateway.domain.errors import GatewayError
from gateway.domain.keys import RESERVED_SEGMENT
from gateway.domain.lifecycle import LifecycleRule, StoreRule
from gateway.domain.settings import ConfigError

# Prefixes the gateway keeps for itself in every bucket (beside a bucket's
# staging prefix): its records, and the content-addressed store.
GATEWAY_PREFIXES = (f"{RESERVED_SEGMENT}/", ".cas/")
DEFAULT_ABORT_ID = "default-abort"


class Enforcement(enum.StrEnum):
    NATIVE = "native"  # the store's lifecycle configuration
    GATEWAY = "gateway"  # the gateway's periodic task


@dataclass(frozen=True, slots=True)
class RuleInForce:
    rule: LifecycleRule
    enforcement: Enforcement
    # Why the gateway enforces it ("" when native).
    reason: str = ""


@dataclass(frozen=True, slots=True)
class BucketLifecycle:
    """A bucket's rules, each with where it is enforced."""

    bucket: str
    rules: tuple[RuleInForce, ...] = ()
    # The gateway's cleanup aborts the bucket's unfinished uploads older than
    # this (None: the bucket keeps none).
    abort_age: float | None = None
    # Whether the store's configuration is the gateway's to write: the
    # bucket's table has a lifecycle array (an empty one removes the rules
    # the gateway installed before).
    installs: bool = False

    def native(self) -> list[LifecycleRule]:
        return [r.rule for r in self.rules if r.enforcement is Enforcement.NATIVE]

    def expiring(self) -> list[RuleInForce]:
        return [r for r in self.rules if r.rule.expire_after is not None]

    def unreported(self, store_rules: Iterable[StoreRule]) -> frozenset[str]:
        """The ids of the native rules that store_rules (what the store
        reports of its configuration) do not hold: the gateway's task
        expires in their place."""
        reported = {rule.gateway_id for rule in store_rules if rule.managed}
        return frozenset(rule.id for rule in self.native() if rule.id not in reported)


def reserved_prefixes(target: Target) -> tuple[str, ...]:
    """The prefixes of target's bucket that no lifecycle rule may touch."""
    staging = target.staging_prefix
    return GATEWAY_PREFIXES if staging is None else (staging, *GATEWAY_PREFIXES)


async def installed_rules(target: Target) -> tuple[list[StoreRule], str]:
    """The rules of the store's own lifecycle configuration (none when it
    has none), and why they could not be read ("": they were)."""
    installer = target.backend.capabilities.lifecycle
    if installer is None:
        return [], ""
    try:
        return await installer.installed(), ""
    except GatewayError as failure:
        return [], failure.message


def _reason(rule: LifecycleRule, backend: Backend, reserved: Sequence[str]) -> str:
    """Why the store cannot enforce rule ("": it can)."""
    installer = backend.capabilities.lifecycle
    if not rule.native:
        return "native = false"
    if installer is None:
        return f"a {backend.kind} bucket has no lifecycle configuration of its own"
    if rule.acts_on_objects:
        covered = [prefix for prefix in reserved if prefix.startswith(rule.prefix)]
        if covered:
            return f"its prefix covers the gateway's reserved {covered[0]!r}"
    if not installer.expresses(rule):
        return f"the {backend.kind} store cannot express it"
    return ""


def plan(
    setting: str,
    target: Target,
    rules: Sequence[LifecycleRule] | None,
    default_abort_age: float,
) -> BucketLifecycle:
    """The bucket's rules placed; setting: buckets.NAME.lifecycle, named by
    the ConfigError of a rule no one can enforce. rules None: the bucket's
    table has no lifecycle array."""
    backend = target.backend
    reserved = reserved_prefixes(target)
    placed: list[RuleInForce] = []
    abort_age = None
    for index, rule in enumerate(rules or ()):
        where = f"{setting}[{index}]"
        inside = [prefix for prefix in reserved if rule.prefix.startswith(prefix)]
        if inside:
            raise ConfigError(f"{where}.prefix", f"{inside[0]!r} is reserved for the gateway")
        reason = _reason(rule, backend, reserved)
        if reason and rule.transition_after is not None:
            raise ConfigError(
                f"{where}.transition_after", f"only the store moves objects: {reason}"
            )
        aborts = rule.abort_incomplete_uploads_after
        if reason and aborts is not None and rule.prefix:
            raise ConfigError(
                f"{where}.abort_incomplete_uploads_after",
                f'the gateway aborts a whole bucket\'s uploads only (prefix ""): {reason}',
            )
        if aborts is not None and not rule.prefix:
            abort_age = aborts
        enforcement = Enforcement.GATEWAY if reason else Enforcement.NATIVE
        placed.append(RuleInForce(rule, enforcement, reason))
    if backend.capabilities.cleaner is not None and abort_age is None:
        abort_age = default_abort_age
        default = LifecycleRule(
            DEFAULT_ABORT_ID, abort_incomplete_uploads_after=default_abort_age, native=False
        )
        placed.append(RuleInForce(default, Enforcement.GATEWAY, "GATEWAY_STALE_UPLOAD_AGE"))
    return BucketLifecycle(target.bucket, tuple(placed), abort_age, rules is not None)
