"""The gateway's buckets, and the one door through which a request reaches a
driver: Buckets.open.

Every operation, whatever front it came through (gRPC, a signed URL), names a
bucket, an object key or prefix and what it wants to do. open() checks all
three once: it records them for the call's log line, resolves the bucket
("" means the default), validates the key, and asks each guard whether the
access may go ahead. Authorization and telemetry hook in here, as guards, so
no route can reach a backend past them.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.backends.base import Backend
from gateway.core import calllog
from gateway.core.cdn import CdnSigner
from gateway.core.scanning import DEFAULT_STAGING_PREFIX, ScanPolicy, hidden_key
from gateway.domain.checksums import DEFAULT_SHA256_CHOICE, Sha256Choice
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.identity import Principal
from gateway.domain.keys import validate_bucket, validate_key, validate_prefix
from gateway.domain.upload_policy import UploadPolicy


class Action(enum.StrEnum):
    """What a request does to what it names."""

    READ = "read"  # Head, Get, signed GET/HEAD, a Copy's source
    WRITE = "write"  # Put, uploads, signed PUT/POST, a Copy's destination
    DELETE = "delete"
    LIST = "list"  # names a prefix, not a key
    SIGN = "sign"  # SignUrl: hands the access on to a URL's holder
    ADMIN = "admin"  # cleanup; another principal's resumable upload; a lifecycle ("")


@dataclass(frozen=True, slots=True)
class Target:
    """A validated access: the bucket by name, its driver, the key (for
    LIST, the prefix) and who asks."""

    bucket: str
    key: str
    action: Action
    backend: Backend
    principal: Principal
    # For SIGN, the HTTP method the URL will allow ("GET", "PUT", ...); "" otherwise.
    scope: str = ""
    # When a write to the bucket computes its object's SHA-256.
    sha256: Sha256Choice = DEFAULT_SHA256_CHOICE
    # What a write to the bucket must be (None: anything): gateway.core.upload_checks.
    policy: UploadPolicy | None = None
    # Malware scanning of the bucket's writes (None: not scanned).
    scan: ScanPolicy | None = None
    # The CDN in front of the bucket, signing its URLs (None: none).
    cdn: CdnSigner | None = None

    @property
    def staging_prefix(self) -> str | None:
        """Where the bucket's writes wait for their checks, hidden from every
        call: a scanning bucket's, and that of a bucket with an upload policy
        on a store that signs URLs itself (its direct uploads); None: none."""
        if self.scan is not None:
            return self.scan.staging_prefix
        if self.policy is not None and self.backend.capabilities.presigner is not None:
            return DEFAULT_STAGING_PREFIX
        return None


class Guard(Protocol):
    """Decides whether an access may go ahead; raises GatewayError if not."""

    def check(self, target: Target) -> None: ...


def _own_groups(principal: Principal) -> frozenset[str]:
    return principal.groups


class Buckets:
    """Resolves request bucket names ("" means the default) to drivers."""

    def __init__(
        self,
        backends: Mapping[str, Backend],
        default: str,
        guards: Sequence[Guard] = (),
        sha256: Mapping[str, Sha256Choice] | None = None,
        *,
        scan: Mapping[str, ScanPolicy] | None = None,
        upload_policies: Mapping[str, UploadPolicy] | None = None,
        groups_of: Callable[[Principal], frozenset[str]] | None = None,
        cdn: Mapping[str, CdnSigner] | None = None,
        reserved: Mapping[str, str] | None = None,
    ) -> None:
        """sha256: each bucket's SHA-256 choice (DEFAULT_SHA256_CHOICE if not
        given); scan: the scanning buckets' policies; upload_policies: the
        buckets' upload policies (none if not given); groups_of: a
        principal's groups as the access policy has them (its [groups] table
        added), which upload policy rules match (default: its own groups);
        cdn: the signers of the buckets with a CDN in front of them;
        reserved: {bucket: the prefix of the keys its layer keeps for itself}
        (a dedup bucket's stored contents), refused at the door."""
        if default not in backends:
            raise ValueError(f"default bucket {default!r} is not configured")
        self._backends = dict(backends)
        self._guards = tuple(guards)
        self._sha256 = dict(sha256 or {})
        self._policies = dict(upload_policies or {})
        self._scan = dict(scan or {})
        self._groups_of = groups_of or _own_groups
        self._cdn = dict(cdn or {})
        self._reserved = dict(reserved or {})
        self.default = default

    def open(
        self,
        bucket: str,
        key: str,
        action: Action,
        scope: str = "",
        *,
        writer: Principal | None = None,
    ) -> Target:
        """The only way a request reaches a backend: note the call, resolve
        the bucket, validate the key (a prefix for LIST), run the guards.
        writer: whose upload policy rules the write is judged by when it is
        not the caller's own (a resumable upload continued by an admin: its
        owner); the guards always judge the caller."""
        calllog.note(bucket, key, action.value)
        name, backend = self._resolve(bucket)
        # A LIST names a prefix; an ADMIN call may name the whole bucket ("").
        whole = action is Action.LIST or (action is Action.ADMIN and not key)
        key = validate_prefix(key) if whole else validate_key(key)
        sha256 = self._sha256.get(name, DEFAULT_SHA256_CHOICE)
        scan = self._scan.get(name)
        if scan is not None:
            hidden_key(scan, key)
        principal = calllog.current().principal
        policy = self._policies.get(name)
        if policy is not None and policy.rules:
            # The caller's rule, resolved here once, so every way in judges by it.
            whose = principal if writer is None else writer
            policy = policy.for_caller(whose, self._groups_of(whose))
        target = Target(
            name,
            key,
            action,
            backend,
            principal,
            scope,
            sha256,
            policy=policy,
            scan=scan,
            cdn=self._cdn.get(name),
        )
        reserved = self._reserved.get(name)
        if reserved is not None and key.startswith(reserved):
            raise GatewayError(
                Reason.INVALID_KEY,
                f"keys under {reserved!r} are reserved for the bucket's stored contents",
                key=key,
            )
        staging = target.staging_prefix
        if scan is None and staging is not None and key.startswith(staging):
            raise GatewayError(
                Reason.INVALID_KEY,
                f"keys under {staging!r} are reserved for uploads awaiting their checks",
                key=key,
            )
        for guard in self._guards:
            guard.check(target)
        return target

    def _resolve(self, name: str) -> tuple[str, Backend]:
        """(bucket name, driver); BUCKET_NOT_FOUND for unknown names."""
        if not name:
            name = self.default
        calllog.resolved(name)
        backend = self._backends.get(name)
        if backend is None:
            validate_bucket(name)
            raise GatewayError(
                Reason.BUCKET_NOT_FOUND, f"bucket {name!r} is not configured", bucket=name
            )
        return name, backend

    def unguarded(self) -> Buckets:
        """The same buckets without the guards, for the gateway's own sweeps
        (pending uploads), which act for no caller."""
        view = copy.copy(self)
        view._guards = ()
        return view

    def __iter__(self) -> Iterator[tuple[str, Backend]]:
        """Every bucket with its driver, for sweeps and health checks (not
        for requests: those go through open)."""
        return iter(self._backends.items())

    async def close(self) -> None:
        for backend in self._backends.values():
            await backend.close()
