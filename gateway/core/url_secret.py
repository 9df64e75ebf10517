"""The keys signed URLs and upload ids are signed with: STORAGE_URL_SECRET, or a
file the gateway creates once in its data directory, so that URLs and upload
ids survive restarts.

Secrets rotate: STORAGE_URL_SECRET may list several, separated by commas, the
current one first, then previous ones (the file: one hex secret per line, in
the same order). New URLs and upload ids are made with the current secret;
those made with a previous one still verify until they expire; removing a
secret from the list retires what was made with it. Each URL and upload id
names its secret by a key id derived from it (key_id_of), so verification
picks the one secret instead of trying them all, and replicas configured with
the same secrets agree on the ids without anyone writing them down.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.domain.fsutil import fsync_dir, make_private_dirs
from gateway.domain.settings import ConfigError

log = logging.getLogger(__name__)

SECRET_ENV = "STORAGE_URL_SECRET"  # noqa: S105 (a name, not a secret)
SECRET_FILE = ".url-secret"  # noqa: S105
MIN_SECRET_BYTES = 16
SECRET_SEPARATOR = ","  # noqa: S105 (a comma, not a secret)
# Hex digits of a key id: 32 bits tell a handful of secrets apart, and a clash
# (two secrets with one id) is refused at load rather than resolved by trying.
KEY_ID_CHARS = 8
_KEY_ID_LABEL = b"storagegw-kid\x00"


def key_id_of(secret: bytes) -> str:
    """The public name of a secret: a short hash, the same on every replica.
    It reveals no more about the secret than a signature made with it does."""
    return hashlib.sha256(_KEY_ID_LABEL + secret).hexdigest()[:KEY_ID_CHARS]


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str
    secret: bytes = field(repr=False)


class SecretRing:
    """The secrets in use: the current one (signs) first, then previous ones
    (still verify). Never shows a secret in its repr."""

    def __init__(self, secrets: Sequence[bytes], setting: str = SECRET_ENV) -> None:
        """ConfigError naming setting when there is none, one is shorter than
        MIN_SECRET_BYTES, or two share a key id (the same secret twice)."""
        if not secrets:
            raise ConfigError(setting, "no secret given")
        keys: dict[str, SigningKey] = {}
        for number, secret in enumerate(secrets, 1):
            if len(secret) < MIN_SECRET_BYTES:
                raise ConfigError(
                    setting,
                    f"{_which(number, len(secrets))} must be at least {MIN_SECRET_BYTES} bytes "
                    f"long (got {len(secret)}); use e.g. 32 random bytes in hex",
                )
            key = SigningKey(key_id_of(secret), secret)
            if key.key_id in keys:
                raise ConfigError(
                    setting,
                    f"secret {number} has the key id {key.key_id} of an earlier one "
                    "(the same secret twice?); list each secret once",
                )
            keys[key.key_id] = key
        self._keys = keys
        self.current = next(iter(keys.values()))

    @classmethod
    def of(cls, secret: bytes | SecretRing) -> SecretRing:
        """A ring as given, or the ring of one secret."""
        return secret if isinstance(secret, SecretRing) else cls([secret])

    def find(self, key_id: str) -> SigningKey | None:
        """The secret named key_id, None when it is not (or no longer) in use."""
        return self._keys.get(key_id)

    def __iter__(self) -> Iterator[SigningKey]:
        """Current first, then previous ones."""
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"SecretRing(key_ids={list(self._keys)})"


def _which(number: int, count: int) -> str:
    return "the secret" if count == 1 else f"secret {number} of {count}"


def parse_secrets(text: str, setting: str = SECRET_ENV) -> SecretRing:
    """The ring a STORAGE_URL_SECRET value names. One secret is taken as
    is (its UTF-8 bytes), exactly as before rotation existed; a list is
    split at commas, with the spaces around each secret dropped. Errors
    (ConfigError) name setting and the secret's position, never the secret."""
    if SECRET_SEPARATOR not in text:
        return SecretRing([text.encode("utf-8")], setting)
    entries = [entry.strip() for entry in text.split(SECRET_SEPARATOR)]
    for number, entry in enumerate(entries, 1):
        if not entry:
            raise ConfigError(
                setting, f"secret {number} of {len(entries)} is empty (a stray comma?)"
            )
    return SecretRing([entry.encode("utf-8") for entry in entries], setting)


def load_or_create_secrets(configured: str | None, data_dir: Path) -> SecretRing:
    """The URL-signing keys.

    configured (STORAGE_URL_SECRET) wins when not None (parse_secrets).
    Otherwise data_dir/.url-secret is read (one hex secret per line, current
    first), or created once (32 random bytes, hex, mode 0600) atomically:
    when several processes race, all of them end up with the first one's
    secret.
    """
    if configured is not None:
        return parse_secrets(configured)
    path = data_dir / SECRET_FILE
    try:
        return _read_secret_file(path)
    except FileNotFoundError:
        pass
    make_private_dirs(data_dir)
    return _create_secret_file(path)


def _read_secret_file(path: Path) -> SecretRing:
    text = path.read_text(encoding="ascii", errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        listed = [bytes.fromhex(line) for line in lines]
    except ValueError:
        raise ValueError(f"URL secret file {path} is not hex; fix or remove it") from None
    ring = SecretRing(listed, f"URL secret file {path}")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("URL secret file %s is readable by others (mode %o); use 0600", path, mode)
    return ring


def _create_secret_file(path: Path) -> SecretRing:
    text = secrets.token_hex(32)
    tmp = path.with_name(f"{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, (text + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # link, unlike rename, never replaces a file another process made.
            os.link(tmp, path)
        except FileExistsError:
            return _read_secret_file(path)
        except OSError:
            # No hard links on this filesystem: rename, unless someone won.
            if path.exists():
                return _read_secret_file(path)
            os.replace(tmp, path)
        with contextlib.suppress(OSError):  # best effort: the file itself is fsynced
            fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    log.info("created URL signing secret file %s", path)
    return _read_secret_file(path)
