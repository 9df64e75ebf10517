"""Where svc-infra's storage contract and the gateway's differ, the adapter's
side of each: key rules, errors, and user metadata values.

- Keys: svc-infra's backends refuse keys the gateway takes (any character
  outside `A-Z a-z 0-9 . _ - /`, any `..`, even inside a name), and the
  gateway refuses keys svc-infra's backends take (`a//b`, `a/./b`, `dir/`,
  a first segment `.storagegw`). An app written for svc-infra expects its
  rules, so the adapter checks them first (`svc_infra_key_rules`), with the
  messages svc-infra gives; what the gateway still refuses is an
  InvalidKeyError too.
- Errors: each storagegw exception becomes the svc-infra one its callers
  catch (`to_svc_infra_error`), the gateway's message kept.
- Metadata: svc-infra's memory and local backends give back the values
  `put` got (an int stays an int); the gateway keeps strings. A string is
  stored as it is, so other clients of the gateway read it unchanged; any
  other JSON value is stored as its JSON text, and its name listed under
  JSON_FIELDS, so that `get_metadata` turns it back into the value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from svc_infra.storage.base import (
    FileNotFoundError as SvcFileNotFoundError,
)
from svc_infra.storage.base import (
    InvalidKeyError,
    PermissionDeniedError,
    QuotaExceededError,
)
from svc_infra.storage.base import StorageError as SvcStorageError

from storagegw import errors

__all__ = [
    "JSON_FIELDS",
    "decode_metadata",
    "encode_metadata",
    "svc_infra_key_rules",
    "to_svc_infra_error",
]

# The metadata entry naming the fields whose values are JSON text (lower
# case: S3 gives metadata names back lower-cased).
JSON_FIELDS = "svc-infra-json-fields"
_MAX_KEY_CHARACTERS = 1024
_SAFE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/")


def svc_infra_key_rules(key: str) -> None:
    """Raise InvalidKeyError where svc-infra's own backends would (its
    MemoryBackend and LocalBackend `_validate_key`, 1.22), with their words."""
    if not key:
        raise InvalidKeyError("Key cannot be empty")
    if key.startswith("/"):
        raise InvalidKeyError("Key cannot start with /")
    if ".." in key:
        raise InvalidKeyError("Key cannot contain .. (path traversal)")
    if len(key) > _MAX_KEY_CHARACTERS:
        raise InvalidKeyError("Key cannot exceed 1024 characters")
    if not _SAFE_CHARACTERS.issuperset(key):
        raise InvalidKeyError("Key can only contain alphanumeric, dot, dash, underscore, and slash")


def to_svc_infra_error(error: errors.StorageError, key: str) -> SvcStorageError:
    """The svc-infra exception for a gateway error about `key`."""
    message = error.message or str(error)
    if isinstance(error, errors.ObjectNotFound):
        return SvcFileNotFoundError(f"File not found: {key}")
    if isinstance(error, errors.InvalidKey):
        return InvalidKeyError(f"Invalid key {key!r}: {message}")
    if isinstance(error, errors.QuotaExceeded | errors.ObjectTooLarge):
        return QuotaExceededError(f"Storage quota exceeded writing {key}: {message}")
    if isinstance(error, errors.PermissionDenied | errors.Unauthenticated):
        return PermissionDeniedError(f"Permission denied for {key}: {message}")
    # BucketNotFound, Unavailable, InvalidArgument (metadata over 8 KiB), ...
    label = error.reason or error.code.name
    return SvcStorageError(f"Storage gateway error for {key}: {message} ({label})")


def encode_metadata(metadata: Mapping[Any, Any] | None) -> dict[str, str]:
    """svc-infra's metadata dict as the gateway's strings (see the module doc)."""
    stored: dict[str, str] = {}
    as_json: list[str] = []
    for name, value in (metadata or {}).items():
        field = str(name)
        if field.lower() == JSON_FIELDS:
            raise SvcStorageError(f"metadata name {field!r} is reserved by storagegw.svc_infra")
        if isinstance(value, str):
            stored[field] = value
            continue
        try:
            stored[field] = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as error:
            raise SvcStorageError(
                f"metadata {field!r}: {type(value).__name__} is not a JSON value ({error})"
            ) from None
        as_json.append(field)
    if as_json:
        stored[JSON_FIELDS] = json.dumps(as_json, separators=(",", ":"))
    return stored


def decode_metadata(stored: Mapping[str, str]) -> dict[str, Any]:
    """The gateway's metadata strings as svc-infra's values; the JSON_FIELDS
    entry itself is not shown."""
    as_json = {name.lower() for name in _json_field_names(stored.get(JSON_FIELDS, ""))}
    values: dict[str, Any] = {}
    for name, text in stored.items():
        if name == JSON_FIELDS:
            continue
        if name.lower() in as_json:
            try:
                values[name] = json.loads(text)
                continue
            except ValueError:  # written by another client: show it as it is
                pass
        values[name] = text
    return values


def _json_field_names(listed: str) -> list[str]:
    if not listed:
        return []
    try:
        names = json.loads(listed)
    except ValueError:
        return []
    if not isinstance(names, list):
        return []
    return [name for name in names if isinstance(name, str)]
