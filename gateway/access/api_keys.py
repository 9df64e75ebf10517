"""Static API keys for small setups: the policy file holds the sha256 of each
key, never the key, and a bearer value is looked up by its hash.

`python -m gateway.access.api_keys --principal ci-uploader --group ci` makes
a new random key and prints it with the [[api_keys]] lines to paste.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gateway.domain.settings import ConfigError

# Keys this module makes start with it, so that a key pasted where it does not
# belong is recognisable (and secret scanners can find it).
KEY_PREFIX = "sgw_"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def hash_key(key: str) -> str:
    """The sha256 hex of a key, as the policy file stores it."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One [[api_keys]] entry: whose key it is, by its hash."""

    principal: str
    sha256: str
    groups: frozenset[str] = frozenset()


class ApiKeys:
    """The known keys, indexed by hash: a lookup hashes the presented key
    first, so neither the dictionary nor the comparison ever sees the key."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self._by_hash: dict[str, ApiKey] = {}
        for key in keys:
            self._by_hash[key.sha256] = key

    def lookup(self, presented: str) -> ApiKey | None:
        """The entry whose hash matches the presented key, or None."""
        digest = hash_key(presented)
        entry = self._by_hash.get(digest)
        if entry is None or not hmac.compare_digest(entry.sha256, digest):
            return None
        return entry

    def __len__(self) -> int:
        return len(self._by_hash)

    def __bool__(self) -> bool:
        return bool(self._by_hash)


def parse_api_keys(setting: str, where: str, entries: object) -> ApiKeys:
    """The [[api_keys]] array of a policy file; ConfigError naming the entry
    for anything wrong (where names the file)."""
    if not isinstance(entries, list):
        raise ConfigError(setting, f"{where}: api_keys must be an array of tables ([[api_keys]])")
    keys: list[ApiKey] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        name = f"{where}: api_keys[{index}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(setting, f"{name} must be a table")
        unknown = set(entry) - {"principal", "sha256", "groups"}
        if unknown:
            raise ConfigError(setting, f"{name} has unknown fields: {', '.join(sorted(unknown))}")
        principal = entry.get("principal")
        if not isinstance(principal, str) or not principal:
            raise ConfigError(setting, f"{name}: principal must be a non-empty string")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest.lower()):
            raise ConfigError(
                setting,
                f"{name}: sha256 must be the 64 hex digits of the key's sha256 "
                "(make one with: python -m gateway.access.api_keys --principal NAME)",
            )
        digest = digest.lower()
        if digest in seen:
            raise ConfigError(setting, f"{name}: the same key hash appears twice")
        seen.add(digest)
        groups = entry.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
            raise ConfigError(setting, f"{name}: groups must be a list of non-empty strings")
        keys.append(ApiKey(principal, digest, frozenset(groups)))
    return ApiKeys(keys)


def toml_entry(principal: str, key: str, groups: Sequence[str] = ()) -> str:
    """The [[api_keys]] lines for a key (its hash, not the key)."""
    lines = [
        "[[api_keys]]",
        f"principal = {_toml_string(principal)}",
        f'sha256 = "{hash_key(key)}"',
    ]
    if groups:
        lines.append(f"groups = [{', '.join(_toml_string(g) for g in groups)}]")
    return "\n".join(lines)


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.access.api_keys",
        description="Make a new API key: prints the key (give it to the caller, once) and "
        "the lines to paste into the policy file, which hold only its hash.",
    )
    parser.add_argument("--principal", required=True, help="the id the key authenticates as")
    parser.add_argument("--group", action="append", default=[], help="a group (repeatable)")
    args = parser.parse_args(argv)
    key = new_key()
    print(f"key (shown once, store it as a secret): {key}")
    print()
    print("policy file lines:")
    print(toml_entry(args.principal, key, args.group))
    return 0


if __name__ == "__main__":
    sys.exit(main())
