"""Reading a bucket's [buckets.NAME.upload_policy] table into an UploadPolicy,
with its per-principal [[buckets.NAME.upload_policy.rules]]; every
ConfigError names the setting (buckets.NAME.upload_policy.FIELD,
buckets.NAME.upload_policy.rules[N].FIELD)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from gateway.domain.media_types import validate_content_type
from gateway.domain.settings import ConfigError, parse_size
from gateway.domain.type_rules import valid_pattern
from gateway.domain.upload_policy import UploadPolicy, UploadRule

FIELDS = (
    "min_size",
    "max_size",
    "allowed_types",
    "denied_types",
    "require_type_match",
    "allowed_suffixes",
    "required_metadata",
)
RULES = "rules"
# What a rule names, besides any of FIELDS.
RULE_SUBJECTS = ("principals", "groups")
# A user metadata name as every driver keeps it (S3 and GCS headers).
_METADATA_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*", re.IGNORECASE)


def _size(setting: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(setting, f"{value!r} is not a size (examples: 0, 512KiB, 10MiB)")
    return parse_size(setting, str(value))


def _strings(setting: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(setting, f"must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def _patterns(setting: str, value: object) -> tuple[str, ...]:
    patterns = _strings(setting, value)
    for pattern in patterns:
        if not valid_pattern(pattern) or (
            "*" not in pattern and validate_content_type(pattern) != pattern
        ):
            raise ConfigError(
                setting,
                f"{pattern!r} is not a media type pattern (examples: image/png, image/*, */*)",
            )
    return tuple(pattern.lower() for pattern in patterns)


def _suffixes(setting: str, value: object) -> tuple[str, ...]:
    suffixes = _strings(setting, value)
    for suffix in suffixes:
        if "/" in suffix:
            raise ConfigError(setting, f"{suffix!r} is not a key suffix: it holds a '/'")
    return tuple(suffix.lower() for suffix in suffixes)


def _names(setting: str, value: object) -> tuple[str, ...]:
    names = _strings(setting, value)
    for name in names:
        if not _METADATA_NAME.fullmatch(name):
            raise ConfigError(setting, f"{name!r} is not a user metadata name")
    return tuple(name.lower() for name in names)


def parse_upload_policy(setting: str, table: object) -> UploadPolicy:
    """The policy of table, the value of setting (buckets.NAME.upload_policy),
    with its rules: each the bucket's fields with the rule's set over them."""
    if not isinstance(table, Mapping):
        raise ConfigError(setting, "must be a table")
    values: Mapping[str, Any] = table
    _no_unknown(setting, values, (*FIELDS, RULES))
    own = {name: value for name, value in values.items() if name != RULES}
    policy = _parse_fields(setting, own)
    rules = values.get(RULES, [])
    if not isinstance(rules, list):
        raise ConfigError(
            f"{setting}.{RULES}",
            f"must be an array of tables ([[{setting}.{RULES}]]), got {rules!r}",
        )
    parsed = tuple(
        _parse_rule(f"{setting}.{RULES}[{index}]", own, rule) for index, rule in enumerate(rules)
    )
    return dataclasses.replace(policy, rules=parsed)


def _parse_rule(setting: str, bucket_fields: Mapping[str, Any], table: object) -> UploadRule:
    """One rule (setting: buckets.NAME.upload_policy.rules[N])."""
    if not isinstance(table, Mapping):
        raise ConfigError(setting, "must be a table")
    values: Mapping[str, Any] = table
    _no_unknown(setting, values, (*RULE_SUBJECTS, *FIELDS))
    subjects = {name: _strings(f"{setting}.{name}", values.get(name, [])) for name in RULE_SUBJECTS}
    if not subjects["principals"] and not subjects["groups"]:
        raise ConfigError(setting, "names no principals and no groups")
    fields = {name: value for name, value in values.items() if name in FIELDS}
    if not fields:
        raise ConfigError(setting, f"sets none of {', '.join(FIELDS)}")
    # A rule's own field errors name the rule's setting; the bucket's were
    # judged already. A bound of the rule's set against the bucket's other
    # bound (max_size under min_size) names the rule too.
    merged = _parse_fields(setting, {**bucket_fields, **fields})
    return UploadRule(frozenset(subjects["principals"]), frozenset(subjects["groups"]), merged)


def _no_unknown(setting: str, values: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(
            setting,
            f"unknown setting(s) {', '.join(sorted(unknown))} (known: {', '.join(known)})",
        )


def _parse_fields(setting: str, values: Mapping[str, Any]) -> UploadPolicy:
    """The policy of values, only FIELDS (no rules)."""

    def name(field: str) -> str:
        return f"{setting}.{field}"

    min_size = _size(name("min_size"), values.get("min_size", 0))
    max_size = None
    if "max_size" in values:
        max_size = _size(name("max_size"), values["max_size"])
        if max_size < min_size:
            raise ConfigError(name("max_size"), f"{max_size} is below min_size ({min_size})")
    match = values.get("require_type_match", False)
    if not isinstance(match, bool):
        raise ConfigError(name("require_type_match"), f"must be true or false, got {match!r}")
    return UploadPolicy(
        min_size=min_size,
        max_size=max_size,
        allowed_types=_patterns(name("allowed_types"), values.get("allowed_types", [])),
        denied_types=_patterns(name("denied_types"), values.get("denied_types", [])),
        require_type_match=match,
        allowed_suffixes=_suffixes(name("allowed_suffixes"), values.get("allowed_suffixes", [])),
        required_metadata=_names(name("required_metadata"), values.get("required_metadata", [])),
    )
