"""A bucket's upload policy ([buckets.NAME.upload_policy]) and the checks it
makes, with the errors it refuses with.

The checks come in three kinds, by what they need:

- check_request: what the request says (key, declared type and size,
  metadata), before any byte is read;
- check_sniffed: the type sniffed from the object's first bytes
  (gateway.core.sniffing) against the declared one and the type lists;
- check_size: the object's final size, before it is committed (the maximum
  is enforced as bytes arrive, by the ingest pump's Bounds).

Type rules (agreement, patterns) are gateway.domain.type_rules'.

Per-principal rules ([[buckets.NAME.upload_policy.rules]]): the first rule
naming the caller supplies the fields it sets, the bucket's own fill the
rest; for_caller picks that policy once per request, at the core's door
(gateway.core.buckets.Buckets.open), so every way in judges by it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.domain.errors import ErrorTemplate, Reason
from gateway.domain.identity import Principal
from gateway.domain.principal_match import names_caller
from gateway.domain.type_rules import OCTET_STREAM, agrees, effective, essence, matches_any

type_not_allowed = ErrorTemplate(
    Reason.TYPE_NOT_ALLOWED,
    "bucket {bucket!r} does not accept {sniffed!r} objects (declared {declared!r}, "
    "sniffed from its first bytes); nothing was stored",
)
declared_type_not_allowed = ErrorTemplate(
    Reason.TYPE_NOT_ALLOWED,
    "bucket {bucket!r} does not accept objects declared {declared!r}; nothing was stored",
)
type_mismatch = ErrorTemplate(
    Reason.TYPE_MISMATCH,
    "the object is declared {declared!r} but its first bytes are {sniffed!r}; "
    "bucket {bucket!r} requires them to agree; nothing was stored",
)
policy_too_small = ErrorTemplate(
    Reason.OBJECT_TOO_SMALL,
    "object is {size} bytes, below bucket {bucket!r}'s minimum of {min_size}; nothing was stored",
    metadata=("min_size", "size"),
)
policy_too_large = ErrorTemplate(
    Reason.OBJECT_TOO_LARGE,
    "object of {size} bytes exceeds bucket {bucket!r}'s limit of {limit} bytes",
    metadata=("size", "limit"),
)
key_suffix_not_allowed = ErrorTemplate(
    Reason.KEY_SUFFIX_NOT_ALLOWED,
    "key {key!r} does not end in one of {allowed} (bucket {bucket!r})",
    metadata=("key", "allowed"),
)
metadata_required = ErrorTemplate(
    Reason.METADATA_REQUIRED,
    "bucket {bucket!r} requires the user metadata {missing}",
    metadata=("missing",),
)


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    """What a bucket accepts; every field's default accepts anything."""

    min_size: int = 0
    max_size: int | None = None
    # Patterns (`image/*`, `application/pdf`); empty: any type.
    allowed_types: tuple[str, ...] = ()
    denied_types: tuple[str, ...] = ()
    require_type_match: bool = False
    # Key endings (".png"), compared case-insensitively; empty: any key.
    allowed_suffixes: tuple[str, ...] = ()
    # Names in lower case, compared case-insensitively (S3 lower-cases them).
    required_metadata: tuple[str, ...] = ()
    # Per-principal rules, first match wins; each holds its whole policy. Not
    # compared: a policy's verdicts (cached by _type_verdict) depend on its
    # own fields only, the rules being consulted by for_caller alone.
    rules: tuple[UploadRule, ...] = field(default=(), compare=False)

    @property
    def sniffs(self) -> bool:
        """Whether writes must have their first bytes sniffed."""
        return bool(self.allowed_types or self.denied_types or self.require_type_match)

    @property
    def ever_sniffs(self) -> bool:
        """Whether writes of some caller (this policy's, or a rule's) are sniffed."""
        return self.sniffs or any(rule.policy.sniffs for rule in self.rules)

    def for_caller(self, principal: Principal, groups: frozenset[str]) -> UploadPolicy:
        """The policy a write by principal (with groups, its own and those of
        the access policy's [groups] table) is judged by: that of the first
        rule naming it, else this one. An unauthenticated caller (authentication
        off, an unsigned URL) is no one a rule can name: this policy."""
        if principal.authenticated:
            for rule in self.rules:
                if names_caller(rule.principals, rule.groups, principal, groups):
                    return rule.policy
        return self

    def check_request(
        self,
        bucket: str,
        key: str,
        content_type: str,
        metadata: Mapping[str, str],
        size: int | None,
    ) -> None:
        """Refuse what the request itself shows to be refused: the key's
        suffix, missing metadata, a declared type denied or not allowed, a
        declared size out of bounds. Nothing declared (application/octet-
        stream) leaves the type to the sniff."""
        if self.allowed_suffixes and not key.lower().endswith(self.allowed_suffixes):
            raise key_suffix_not_allowed(
                key=key, allowed=", ".join(self.allowed_suffixes), bucket=bucket
            )
        given = {name.lower() for name in metadata}
        missing = [name for name in self.required_metadata if name not in given]
        if missing:
            raise metadata_required(missing=", ".join(missing), bucket=bucket)
        declared = essence(content_type)
        if declared and declared != OCTET_STREAM:
            denied = matches_any(self.denied_types, declared)
            if denied or (self.allowed_types and not matches_any(self.allowed_types, declared)):
                raise declared_type_not_allowed(declared=declared, bucket=bucket)
        if size is not None:
            if self.max_size is not None and size > self.max_size:
                raise policy_too_large(size=size, bucket=bucket, limit=self.max_size)
            self.check_size(bucket, size)

    def check_sniffed(self, bucket: str, content_type: str, sniffed: str) -> None:
        """Refuse an object whose sniffed type is denied, not allowed, or (with
        require_type_match) disagrees with the declared one."""
        declared = essence(content_type) or OCTET_STREAM
        reason = _type_verdict(self, declared, sniffed)
        if reason is Reason.TYPE_MISMATCH:
            raise type_mismatch(declared=declared, sniffed=sniffed, bucket=bucket)
        if reason is not None:
            raise type_not_allowed(sniffed=sniffed, declared=declared, bucket=bucket)

    def check_size(self, bucket: str, size: int) -> None:
        """OBJECT_TOO_SMALL under min_size."""
        if size < self.min_size:
            raise policy_too_small(size=size, bucket=bucket, min_size=self.min_size)


@dataclass(frozen=True, slots=True)
class UploadRule:
    """One [[buckets.NAME.upload_policy.rules]] entry: whom it names (as an
    access policy grant does: ids, "*" for anyone authenticated, groups), and
    the bucket's policy with the rule's fields set over it."""

    principals: frozenset[str]
    groups: frozenset[str]
    policy: UploadPolicy


# Every write of a bucket asks about the same few (declared, sniffed) pairs:
# each is judged once (a few µs of pattern matching) and remembered.
@functools.lru_cache(maxsize=4096)
def _type_verdict(policy: UploadPolicy, declared: str, sniffed: str) -> Reason | None:
    """Why policy refuses an object declared declared whose bytes sniff as
    sniffed (TYPE_MISMATCH or TYPE_NOT_ALLOWED), or None: it does not."""
    if policy.require_type_match and not agrees(declared, sniffed):
        return Reason.TYPE_MISMATCH
    judged = effective(declared, sniffed)
    denied = policy.denied_types
    if matches_any(denied, sniffed) or matches_any(denied, judged):
        return Reason.TYPE_NOT_ALLOWED
    if policy.allowed_types and not matches_any(policy.allowed_types, judged):
        return Reason.TYPE_NOT_ALLOWED
    return None
