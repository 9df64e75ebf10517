"""The gateway chosen by configuration, as svc-infra chooses its backends
(STORAGE_BACKEND and detection; mirrors the cases of svc-infra's
tests/unit/storage/test_easy_storage.py and test_add_storage.py that concern
choosing and wiring a backend), and reached with the credentials configured."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from pydantic import ValidationError
from svc_infra.storage import MemoryBackend, StorageBackend, get_storage, health_check_storage
from svc_infra.storage.base import PermissionDeniedError
from svc_infra.storage.settings import StorageSettings

from storagegw import Client
from storagegw.svc_infra import (
    GatewayStorageBackend,
    GatewayStorageSettings,
    add_storage,
    easy_storage,
)
from tests.access_e2e.tenants import A, policy_gateway
from tests.conftest import RunningGateway

# Every variable that takes part in choosing a backend, svc-infra's and ours.
SELECTION_VARIABLES = (
    "STORAGE_BACKEND",
    "RAILWAY_VOLUME_MOUNT_PATH",
    "AWS_ACCESS_KEY_ID",
    "STORAGE_S3_ACCESS_KEY",
    "STORAGE_S3_BUCKET",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "STORAGE_GCS_BUCKET",
    "CLOUDINARY_URL",
    "STORAGE_CLOUDINARY_CLOUD_NAME",
    "STORAGEGW_TARGET",
    "STORAGEGW_BUCKET",
    "STORAGEGW_TOKEN",
    "STORAGEGW_TLS",
    "STORAGEGW_TLS_CA",
    "STORAGEGW_CERT",
    "STORAGEGW_KEY",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No selection variable but those a test sets, and no `.env` file (the
    settings read one from the working directory)."""
    for name in SELECTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def two_buckets(gateway_factory: Callable[..., RunningGateway], tmp_path: Path) -> RunningGateway:
    config = tmp_path / "buckets.toml"
    config.write_text(
        'default_bucket = "main"\n[buckets.main]\nbackend = "memory"\n'
        '[buckets.uploads]\nbackend = "memory"\n'
    )
    return gateway_factory(GATEWAY_CONFIG=str(config))


async def test_storage_backend_storagegw_chooses_the_gateway(
    two_buckets: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "storagegw")
    monkeypatch.setenv("STORAGEGW_TARGET", two_buckets.target)
    monkeypatch.setenv("STORAGEGW_BUCKET", "uploads")
    storage = easy_storage()
    assert isinstance(storage, GatewayStorageBackend)
    assert (storage.target, storage.bucket) == (two_buckets.target, "uploads")
    async with storage:
        await storage.put("avatars/u1.png", b"png", "image/png", metadata={"user_id": "u1"})
    with Client(two_buckets.target) as client:
        info = client.head("avatars/u1.png", bucket="uploads")
        assert (info.content_type, info.metadata) == ("image/png", {"user_id": "u1"})
        assert list(client.list(bucket="main")) == []


def test_a_gateway_address_alone_chooses_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    """As svc-infra detects S3 from its credentials: STORAGEGW_TARGET set and
    STORAGE_BACKEND not."""
    monkeypatch.setenv("STORAGEGW_TARGET", "127.0.0.1:50999")
    assert GatewayStorageSettings().detect_backend() == "storagegw"
    storage = easy_storage()
    assert isinstance(storage, GatewayStorageBackend)
    assert storage.target == "127.0.0.1:50999"


def test_other_backends_are_svc_infras_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """test_explicit_memory_backend and test_priority_explicit_over_auto: any
    other name goes to svc-infra's easy_storage, even with a gateway set."""
    monkeypatch.setenv("STORAGEGW_TARGET", "127.0.0.1:50999")
    assert isinstance(easy_storage("memory"), MemoryBackend)
    monkeypatch.setenv("STORAGE_BACKEND", "memory")
    assert isinstance(easy_storage(), MemoryBackend)


def test_without_any_setting_memory_as_in_svc_infra() -> None:
    """test_fallback_to_memory."""
    assert GatewayStorageSettings().detect_backend() == "memory"
    assert isinstance(easy_storage(), MemoryBackend)


def test_railway_volume_detection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """test_local_backend.py's test_railway_volume_detection: svc-infra's own
    order holds when no gateway is configured."""
    monkeypatch.setenv("RAILWAY_VOLUME_MOUNT_PATH", str(tmp_path))
    assert GatewayStorageSettings().detect_backend() == "local"


def test_easy_storage_arguments_override_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """test_kwargs_passed_to_backend."""
    monkeypatch.setenv("STORAGEGW_TARGET", "127.0.0.1:50999")
    storage = easy_storage("storagegw", target="127.0.0.1:50998", bucket="other")
    assert isinstance(storage, GatewayStorageBackend)
    assert (storage.target, storage.bucket) == ("127.0.0.1:50998", "other")


def test_svc_infras_own_settings_refuse_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the import line changes: svc-infra's StorageSettings (1.22) take a
    closed list of backends and no other (no registry to add one to). Should
    a release accept more, this test says so."""
    monkeypatch.setenv("STORAGE_BACKEND", "storagegw")
    with pytest.raises(ValidationError, match="storage_backend"):
        StorageSettings()
    assert GatewayStorageSettings().detect_backend() == "storagegw"


def test_the_token_stays_out_of_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGEGW_TOKEN", A.key)
    settings = GatewayStorageSettings()
    backend = easy_storage("storagegw")
    assert A.key not in repr(settings)
    assert A.key not in repr(backend)


async def test_the_configured_token_is_sent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """STORAGEGW_TOKEN authenticates every call; what the policy refuses is
    svc-infra's PermissionDeniedError."""
    with policy_gateway({"STORAGE_BACKEND": "memory"}, tmp_path) as running:
        monkeypatch.setenv("STORAGEGW_TARGET", running.target)
        async with GatewayStorageBackend(running.target) as anonymous:
            with pytest.raises(PermissionDeniedError):
                await anonymous.put(f"{A.home}a.txt", b"x", "text/plain")
        monkeypatch.setenv("STORAGEGW_TOKEN", A.key)
        storage = easy_storage()
        assert isinstance(storage, GatewayStorageBackend)
        async with storage:
            await storage.put(f"{A.home}a.txt", b"mine", "text/plain")
            assert await storage.get(f"{A.home}a.txt") == b"mine"
            with pytest.raises(PermissionDeniedError):
                await storage.put("tenants/tenant-b/a.txt", b"x", "text/plain")
            with pytest.raises(PermissionDeniedError):
                await storage.get("tenants/tenant-b/a.txt")


async def test_put_without_the_right_to_sign(tmp_path: Path) -> None:
    """put_returns_url=False: a caller that may write but not sign (the
    tenants' shared/) gets the object's name rather than a signed URL."""
    with policy_gateway({"STORAGE_BACKEND": "memory"}, tmp_path) as running:
        options = {"token": A.key, "put_returns_url": False}
        async with GatewayStorageBackend(running.target, **options) as storage:
            url = await storage.put("shared/notes.txt", b"hi", "text/plain")
            assert url == "storagegw://default/shared/notes.txt"
            assert await storage.get("shared/notes.txt") == b"hi"
            with pytest.raises(PermissionDeniedError):
                await storage.get_url("shared/notes.txt")


async def test_add_storage_serves_an_app_from_the_gateway(
    svc_gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """test_add_storage_registers_backend, test_get_storage_in_route,
    test_health_check_success: add_storage(app) chooses the gateway from the
    environment; routes get it with Depends(get_storage)."""
    monkeypatch.setenv("STORAGE_BACKEND", "storagegw")
    monkeypatch.setenv("STORAGEGW_TARGET", svc_gateway.target)
    app = FastAPI()
    storage = add_storage(app)
    assert isinstance(storage, GatewayStorageBackend)
    assert app.state.storage is storage

    @app.post("/upload/{name}")
    async def upload(
        name: str, request: Request, store: Annotated[StorageBackend, Depends(get_storage)]
    ) -> dict[str, str]:
        url = await store.put(f"uploads/{name}", await request.body(), "text/plain")
        return {"url": url}

    @app.get("/_health/storage")
    async def health(request: Request) -> dict[str, object]:
        return await health_check_storage(request)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        answer = await http.post("/upload/a.txt", content=b"from the app")
        assert answer.status_code == 200
        assert (await http.get("/_health/storage")).json()["status"] == "healthy"
    async with httpx.AsyncClient() as plain:
        fetched = await plain.get(answer.json()["url"])
        assert fetched.content == b"from the app"
    await storage.aclose()
    with Client(svc_gateway.target) as client:
        assert client.get_bytes("uploads/a.txt") == b"from the app"


async def test_health_check_reports_an_unreachable_gateway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """test_health_check_*: a gateway that does not answer is unhealthy, not
    a crash (svc-infra's check lists one key)."""
    app = FastAPI()
    add_storage(app, GatewayStorageBackend("127.0.0.1:1", timeout=5))

    @app.get("/_health/storage")
    async def health(request: Request) -> dict[str, object]:
        return await health_check_storage(request)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        report = (await http.get("/_health/storage")).json()
    assert report["status"] == "unhealthy"
    await app.state.storage.aclose()
