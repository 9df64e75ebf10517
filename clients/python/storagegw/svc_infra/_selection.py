"""Choosing the gateway by configuration, the way svc-infra chooses backends.

svc-infra (1.22) has no registry of backends: `easy_storage` picks one of
its own by `StorageSettings.detect_backend()` in an if-chain, and
`StorageSettings.storage_backend` is a closed Literal, so that
`STORAGE_BACKEND=storagegw` makes its own settings refuse to load. The
extension point it does have is `add_storage(app, backend)` and every other
function taking a ready backend. So this module offers the same two
functions, with the same arguments, that know one more backend: an app
changes its import line

    from svc_infra.storage import add_storage, easy_storage
to
    from storagegw.svc_infra import add_storage, easy_storage

and then moves to the gateway by configuration: `STORAGE_BACKEND=storagegw`
(or STORAGEGW_TARGET set and STORAGE_BACKEND unset), with the gateway's
address and credentials in the variables the `storagegw` command reads.
Every other value of STORAGE_BACKEND goes to svc-infra's own easy_storage.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import Field, SecretStr
from svc_infra.storage import add_storage as svc_infra_add_storage
from svc_infra.storage import easy_storage as svc_infra_easy_storage
from svc_infra.storage.base import StorageBackend
from svc_infra.storage.settings import StorageSettings

from storagegw._common import DEFAULT_TARGET
from storagegw._credentials import TlsConfig
from storagegw.svc_infra._backend import GatewayStorageBackend

__all__ = ["BACKEND_NAME", "GatewayStorageSettings", "add_storage", "easy_storage"]

BACKEND_NAME = "storagegw"
# svc-infra's backend names, and the gateway's.
BackendName = Literal["local", "s3", "gcs", "cloudinary", "memory", "storagegw"]
logger = logging.getLogger(__name__)


class GatewayStorageSettings(StorageSettings):
    """svc-infra's StorageSettings, with `storagegw` among the backends and
    the gateway's settings, read like the rest (environment, then `.env`):

    STORAGE_BACKEND=storagegw   choose the gateway
    STORAGEGW_TARGET            its host:port (default 127.0.0.1:50051);
                                set alone, it chooses the gateway too
    STORAGEGW_BUCKET            the bucket (default: the gateway's default)
    STORAGEGW_TOKEN             a bearer token (an API key or a JWT)
    STORAGEGW_TLS=1             TLS, the gateway checked against the system's roots
    STORAGEGW_TLS_CA            TLS, checked against these roots (a PEM file)
    STORAGEGW_CERT, STORAGEGW_KEY  a client certificate for mutual TLS
    """

    # One more value than svc-infra's Literal: widening a field is what pydantic
    # subclasses do, and what mypy calls an incompatible override.
    storage_backend: BackendName | None = Field(default=None)  # type: ignore[assignment]
    storagegw_target: str | None = Field(default=None, description="the gateway's host:port")
    storagegw_bucket: str = Field(default="", description="bucket; '' for the default")
    storagegw_token: SecretStr | None = Field(default=None, description="bearer token")
    storagegw_tls: bool = Field(default=False, description="TLS with the system's roots")
    storagegw_tls_ca: str | None = Field(default=None, description="TLS root certificates")
    storagegw_cert: str | None = Field(default=None, description="client certificate")
    storagegw_key: str | None = Field(default=None, description="client certificate's key")

    def detect_backend(self) -> str:
        """svc-infra's detection, with the gateway first: an explicit
        STORAGE_BACKEND wins, then STORAGEGW_TARGET chooses the gateway,
        then svc-infra's own order (Railway volume, S3, GCS, ..., memory)."""
        if self.storage_backend:
            return self.storage_backend
        if self.storagegw_target:
            return BACKEND_NAME
        return super().detect_backend()

    def tls_config(self) -> TlsConfig | None:
        """TLS when any TLS setting is given, as the storagegw command does."""
        if not (self.storagegw_tls or self.storagegw_tls_ca or self.storagegw_cert):
            return None
        return TlsConfig(ca=self.storagegw_tls_ca, cert=self.storagegw_cert, key=self.storagegw_key)

    def gateway_backend(self, **overrides: Any) -> GatewayStorageBackend:
        """The backend these settings describe; `overrides` are
        GatewayStorageBackend's arguments (target, bucket, token, tls...)."""
        options: dict[str, Any] = {
            "target": self.storagegw_target or DEFAULT_TARGET,
            "bucket": self.storagegw_bucket,
        }
        if self.storagegw_token is not None:
            options["token"] = self.storagegw_token.get_secret_value()
        tls = self.tls_config()
        if tls is not None:
            options["tls"] = tls
        options.update(overrides)
        return GatewayStorageBackend(**options)


def easy_storage(backend: str | None = None, **kwargs: Any) -> StorageBackend:
    """svc-infra's `easy_storage`, knowing the gateway as "storagegw":
    `backend` (else STORAGE_BACKEND, else detection) names it, `kwargs` are
    GatewayStorageBackend's arguments for it, or the other backend's."""
    settings = GatewayStorageSettings()
    chosen = backend or settings.detect_backend()
    if chosen != BACKEND_NAME:
        return svc_infra_easy_storage(chosen, **kwargs)
    gateway = settings.gateway_backend(**kwargs)
    logger.info("Initializing storagegw storage backend (gateway at %s)", gateway.target)
    return gateway


def add_storage(
    app: FastAPI,
    backend: StorageBackend | None = None,
    serve_files: bool = False,
    file_route_prefix: str = "/files",
) -> StorageBackend:
    """svc-infra's `add_storage`, choosing the backend with this module's
    easy_storage when none is given. The gateway serves its own signed URLs,
    so `serve_files` applies to svc-infra's LocalBackend only, as there."""
    chosen = backend if backend is not None else easy_storage()
    return svc_infra_add_storage(
        app, chosen, serve_files=serve_files, file_route_prefix=file_route_prefix
    )
