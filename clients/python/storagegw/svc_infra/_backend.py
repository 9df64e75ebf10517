"""GatewayStorageBackend: svc-infra's StorageBackend protocol on AsyncClient."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Literal

from svc_infra.storage.base import FileNotFoundError as SvcFileNotFoundError

from storagegw import errors
from storagegw._common import DEFAULT_TARGET, MAX_PAGE_SIZE, AsyncClosedOnExit
from storagegw._loop_client import LoopClient
from storagegw._types import ObjectInfo
from storagegw.aio import AsyncClient
from storagegw.svc_infra._rules import (
    decode_metadata,
    encode_metadata,
    svc_infra_key_rules,
    to_svc_infra_error,
)

__all__ = ["GatewayStorageBackend", "KeyRules"]

# "svc-infra": keys as svc-infra's own backends take them, then the gateway's
# rules; "gateway": the gateway's rules alone (any NFC UTF-8 name).
KeyRules = Literal["svc-infra", "gateway"]
# What `put` returns: svc-infra's local and S3 backends answer a signed URL
# valid for an hour.
PUT_URL_EXPIRES_IN = 3600


@contextlib.contextmanager
def _as_svc_infra_errors(key: str) -> Iterator[None]:
    try:
        yield
    except errors.StorageError as error:
        raise to_svc_infra_error(error, key) from error


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


class GatewayStorageBackend(AsyncClosedOnExit):
    """svc-infra's `StorageBackend` (put, get, delete, exists, get_url,
    list_keys, get_metadata) on a storage gateway, through AsyncClient.

    Give `target` (and `bucket`, "" for the gateway's default; any other
    AsyncClient argument, such as `token=` or `tls=`, by name) and the
    backend makes its client on first use, inside the event loop that uses
    it (a grpc.aio channel belongs to one loop; a call from another loop
    gets a client of its own). Or give a ready `client=`, which it uses as
    it is and leaves open. `key_rules` says which keys are valid (see
    KeyRules); `put_returns_url=False` makes `put` answer a
    `storagegw://bucket/key` name instead of signing a URL, for callers not
    allowed to sign.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        bucket: str = "",
        client: AsyncClient | None = None,
        key_rules: KeyRules = "svc-infra",
        put_returns_url: bool = True,
        **client_options: Any,
    ) -> None:
        if key_rules not in ("svc-infra", "gateway"):
            raise ValueError(f"key_rules must be 'svc-infra' or 'gateway', not {key_rules!r}")
        self.target = target
        self.bucket = bucket
        self.key_rules = key_rules
        self.put_returns_url = put_returns_url
        self._given = client
        self._made = LoopClient(target, bucket, client_options)

    def __repr__(self) -> str:  # the client options (a token...) stay out of it
        return f"GatewayStorageBackend(target={self.target!r}, bucket={self.bucket!r})"

    # ------------------------------------------------------------ the client

    @property
    def client(self) -> AsyncClient:
        """The AsyncClient of the running event loop."""
        if self._given is not None:
            return self._given
        return self._made.get()

    async def aclose(self) -> None:
        """Close the client this backend made (a given one stays open)."""
        await self._made.close()

    async def _close_on_exit(self) -> None:
        await self.aclose()

    def _check_key(self, key: str) -> None:
        if self.key_rules == "svc-infra":
            svc_infra_key_rules(key)

    # ------------------------------------------------------------ StorageBackend

    async def put(
        self,
        key: str,
        data: bytes | bytearray | memoryview,
        content_type: str,
        metadata: Mapping[Any, Any] | None = None,
    ) -> str:
        """Store `data` under `key` (replacing any object there) and return a
        signed GET URL valid for an hour, as svc-infra's local and S3
        backends do. Values of `metadata` that are not strings come back
        from get_metadata as they went in (JSON values)."""
        self._check_key(key)
        stored = encode_metadata(metadata)
        with _as_svc_infra_errors(key):
            info = await self.client.put_bytes(
                key, data, content_type=content_type or None, metadata=stored
            )
            if not self.put_returns_url:
                return f"storagegw://{info.bucket}/{key}"
            signed = await self.client.sign_url(key, expires_in=PUT_URL_EXPIRES_IN)
        return signed.url

    async def get(self, key: str) -> bytes:
        """The object's bytes (their checksums verified on the way)."""
        self._check_key(key)
        with _as_svc_infra_errors(key):
            return await self.client.get_bytes(key)

    async def delete(self, key: str) -> bool:
        """Delete the object; whether there was one."""
        self._check_key(key)
        with _as_svc_infra_errors(key):
            return await self.client.delete(key)

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under `key` (a "directory", a prefix
        of other keys, is not one: False)."""
        self._check_key(key)
        with _as_svc_infra_errors(key):
            return await self.client.exists(key)

    async def get_url(self, key: str, expires_in: int = 3600, download: bool = False) -> str:
        """A URL the gateway signed for a plain HTTP GET of the object, valid
        for `expires_in` seconds (the gateway's STORAGE_URL_MAX_EXPIRATION
        caps it); `download` makes it answer `Content-Disposition:
        attachment` with the key's last segment as the file name.
        FileNotFoundError when there is no object, as svc-infra's backends."""
        self._check_key(key)
        with _as_svc_infra_errors(key):
            if not await self.client.exists(key):
                raise SvcFileNotFoundError(f"File not found: {key}")
            signed = await self.client.sign_url(key, expires_in=expires_in, download=download)
        return signed.url

    async def list_keys(self, prefix: str = "", limit: int = 100) -> list[str]:
        """Up to `limit` keys that start with `prefix` (a plain string prefix,
        not only whole directories), in key order. A prefix no valid key can
        start with lists nothing."""
        if limit <= 0:
            return []
        keys: list[str] = []
        listing = self.client.list(prefix, page_size=min(limit, MAX_PAGE_SIZE))
        try:
            async for info in listing:
                keys.append(info.key)
                if len(keys) >= limit:
                    break
        except errors.InvalidKey:
            return []
        except errors.StorageError as error:
            raise to_svc_infra_error(error, prefix) from error
        finally:
            close = getattr(listing, "aclose", None)
            if close is not None:
                await close()
        return keys

    async def get_metadata(self, key: str) -> dict[str, Any]:
        """svc-infra's metadata dict: size, content_type, created_at (ISO
        8601), then what the gateway adds (updated_at, etag, generation,
        crc32c and, when kept, sha256, in hex), then the user metadata given
        to put, which wins over a field of the same name, as in svc-infra."""
        self._check_key(key)
        with _as_svc_infra_errors(key):
            info = await self.client.head(key)
        return metadata_of(info)


def metadata_of(info: ObjectInfo) -> dict[str, Any]:
    """An ObjectInfo as the dict svc-infra's get_metadata returns."""
    described: dict[str, Any] = {
        "size": info.size,
        "content_type": info.content_type,
        "created_at": _iso(info.create_time or info.update_time),
        "updated_at": _iso(info.update_time or info.create_time),
        "etag": info.etag,
        "generation": info.generation,
    }
    if info.crc32c is not None:
        described["crc32c"] = f"{info.crc32c:08x}"
    if info.sha256:
        described["sha256"] = info.sha256.hex()
    return {**described, **decode_metadata(info.metadata)}
