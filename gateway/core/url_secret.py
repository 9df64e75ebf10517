"""The key signed URLs and upload ids are signed with: STORAGE_URL_SECRET, or a
file the gateway creates once in its data directory, so that URLs and upload
ids survive restarts."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from gateway.domain.fsutil import fsync_dir, make_private_dirs

log = logging.getLogger(__name__)

SECRET_ENV = "STORAGE_URL_SECRET"  # noqa: S105 (a name, not a secret)
SECRET_FILE = ".url-secret"  # noqa: S105
MIN_SECRET_BYTES = 16


def load_or_create_secret(configured: str | None, data_dir: Path) -> bytes:
    """The URL-signing key.

    configured (STORAGE_URL_SECRET) wins when not None: its UTF-8 bytes, at
    least 16 of them. Otherwise data_dir/.url-secret is read, or created once
    (32 random bytes, hex, mode 0600) atomically: when several processes race,
    all of them end up with the first one's secret.
    """
    if configured is not None:
        secret = configured.encode("utf-8")
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"{SECRET_ENV} must be at least {MIN_SECRET_BYTES} bytes long "
                f"(got {len(secret)}); use e.g. 32 random bytes in hex"
            )
        return secret
    path = data_dir / SECRET_FILE
    try:
        return _read_secret_file(path)
    except FileNotFoundError:
        pass
    make_private_dirs(data_dir)
    return _create_secret_file(path)


def _read_secret_file(path: Path) -> bytes:
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"URL secret file {path} is not hex; fix or remove it") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(
            f"URL secret file {path} holds fewer than {MIN_SECRET_BYTES} bytes; fix or remove it"
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("URL secret file %s is readable by others (mode %o); use 0600", path, mode)
    return secret


def _create_secret_file(path: Path) -> bytes:
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
