"""How the GCS driver reaches GCS: credentials (the operator's file, else
Application Default Credentials; anonymous with an emulator), one HTTP
session whose connection pool is sized to the driver's thread pool, the
storage client and the retry policy for every call.

google-cloud-storage and google-auth are imported inside the functions, so
a gateway without a GCS bucket never loads them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.backends.gcs.settings import GcsSettings
from gateway.backends.observer import StoreObserver

SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)


def emulator_url(host: str) -> str:
    """STORAGE_EMULATOR_HOST with a scheme (the variable often has none)."""
    return host.rstrip("/") if "://" in host else f"http://{host.rstrip('/')}"


def _load_credentials(path: str) -> tuple[Any, str | None]:
    """Credentials from the operator's file: a service-account key (the usual
    case, and the one that signs URLs locally), or another type google-auth
    knows (authorized_user, impersonated_service_account, external_account)."""
    import json
    import warnings

    import google.auth
    from google.oauth2 import service_account

    with open(path, encoding="utf-8") as file:
        info = json.load(file)
    if info.get("type") == "service_account":
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=SCOPES
        )
        return credentials, info.get("project_id")
    with warnings.catch_warnings():
        # It warns about files from untrusted sources; this one is the
        # operator's own configuration.
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded: tuple[Any, str | None] = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
            path, scopes=SCOPES
        )
    return loaded


@dataclasses.dataclass(frozen=True)
class Connection:
    """What connect() builds for one set of GcsSettings."""

    client: Any  # google.cloud.storage.Client
    session: Any  # its HTTP session (connection pool): close it when done
    signer: Any  # credentials that sign URLs; None when there are none
    retry: Any  # google.api_core.retry.Retry for every call


def connect(s: GcsSettings, observer: StoreObserver | None = None) -> Connection:
    """Credentials, an HTTP session and the client, as the driver uses them
    (blocks: finding credentials may ask a metadata server); each request the
    session sends is reported to observer. The benchmark's direct client is
    built by this too."""
    import google.auth
    import requests.adapters
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import storage
    from google.cloud.storage.retry import DEFAULT_RETRY

    from gateway.backends.gcs.observed import ObservedAdapter

    project = s.project
    credentials: Any = None
    if s.credentials_path:
        credentials, file_project = _load_credentials(s.credentials_path)
        project = project or file_project
    options: dict[str, Any] = {}
    if s.emulator_host:
        signer = credentials
        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        options["api_endpoint"] = emulator_url(s.emulator_host)
    else:
        if credentials is None:
            credentials, default_project = google.auth.default(scopes=SCOPES)
            project = project or default_project
        signer = credentials
    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    # One pooled connection per thread: requests keeps only 10 by default.
    adapter = (
        requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=s.threads, max_retries=0)
        if observer is None
        else ObservedAdapter(observer, s.bucket, s.threads)
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    client = storage.Client(
        project=project,
        credentials=credentials,
        client_options=options or None,
        _http=session,
    )
    return Connection(client, session, signer, DEFAULT_RETRY.with_timeout(s.retry_deadline))
