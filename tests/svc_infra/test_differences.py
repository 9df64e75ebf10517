"""Where svc-infra's backends and the gateway differ, what the adapter does:
svc-infra's key rules first, then the gateway's; metadata values typed as
svc-infra's memory and local backends give them back; exists and list_keys
as svc-infra's memory and S3 backends answer; get_url's arguments honoured."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from svc_infra.storage.base import FileNotFoundError as SvcFileNotFoundError
from svc_infra.storage.base import InvalidKeyError
from svc_infra.storage.base import StorageError as SvcStorageError

from storagegw import AsyncClient, Client
from storagegw.svc_infra import JSON_FIELDS, GatewayStorageBackend
from tests.conftest import RunningGateway
from tests.svc_infra.conftest import fetch

# Keys svc-infra's own backends store, and the gateway refuses: its keys are
# paths with no empty, "." or ".." segment, nor its own ".storagegw/".
GATEWAY_ONLY_REFUSES = ("a//b.txt", "dir/", "a/./b.txt", "./a.txt", ".storagegw/x")


@pytest.mark.parametrize("key", GATEWAY_ONLY_REFUSES)
async def test_keys_the_gateway_refuses_are_invalid_keys(
    backend: GatewayStorageBackend, key: str
) -> None:
    with pytest.raises(InvalidKeyError, match="Invalid key"):
        await backend.put(key, b"data", "text/plain")
    for call in (backend.get, backend.exists, backend.delete, backend.get_metadata):
        with pytest.raises(InvalidKeyError):
            await call(key)
    assert await backend.list_keys() == []


async def test_svc_infra_key_rules_are_kept_unless_asked_otherwise(
    svc_gateway: RunningGateway,
) -> None:
    """The gateway stores any NFC UTF-8 name; svc-infra's backends only
    `A-Z a-z 0-9 . _ - /` and no "..", which its apps may rely on (a key
    made from user input). key_rules="gateway" lifts them."""
    async with GatewayStorageBackend(svc_gateway.target) as strict:
        for key in ("été.txt", "a b.txt", "v1..2.txt"):
            with pytest.raises(InvalidKeyError):
                await strict.put(key, b"x", "text/plain")
        assert await strict.list_keys() == []
    async with GatewayStorageBackend(svc_gateway.target, key_rules="gateway") as lax:
        for key in ("été.txt", "a b.txt", "v1..2.txt"):
            await lax.put(key, b"x", "text/plain")
            assert await lax.get(key) == b"x"
        assert sorted(await lax.list_keys()) == ["a b.txt", "v1..2.txt", "été.txt"]
    with pytest.raises(ValueError, match="key_rules"):
        GatewayStorageBackend(svc_gateway.target, key_rules="loose")  # type: ignore[arg-type]


async def test_metadata_values_come_back_as_they_went_in(
    backend: GatewayStorageBackend, svc_gateway: RunningGateway
) -> None:
    """svc-infra's documents store {"category": "legal", "year": 2024}: its
    memory and local backends give the int back, so does the adapter. Other
    clients of the gateway see strings: as given, or JSON text."""
    given = {"category": "legal", "year": 2024, "tags": ["a", "b"], "draft": False, "n": None}
    await backend.put("docs/a.pdf", b"%PDF", "application/pdf", metadata=given)
    metadata = await backend.get_metadata("docs/a.pdf")
    assert {name: metadata[name] for name in given} == given
    assert JSON_FIELDS not in metadata
    async with AsyncClient(svc_gateway.target) as client:
        raw = (await client.head("docs/a.pdf")).metadata
    assert raw["category"] == "legal"
    as_stored = (raw["year"], raw["tags"], raw["draft"], raw["n"])
    assert as_stored == ("2024", '["a","b"]', "false", "null")


async def test_a_string_that_looks_like_json_stays_a_string(backend: GatewayStorageBackend) -> None:
    await backend.put("a.txt", b"x", "text/plain", metadata={"year": "2024", "count": 7})
    metadata = await backend.get_metadata("a.txt")
    assert (metadata["year"], metadata["count"]) == ("2024", 7)


async def test_metadata_that_is_not_json_is_refused_before_writing(
    backend: GatewayStorageBackend,
) -> None:
    with pytest.raises(SvcStorageError, match="'when'"):
        await backend.put("a.txt", b"x", "text/plain", metadata={"when": datetime.now()})
    with pytest.raises(SvcStorageError, match="reserved"):
        await backend.put("a.txt", b"x", "text/plain", metadata={JSON_FIELDS: "[]"})
    assert not await backend.exists("a.txt")


async def test_metadata_of_other_clients_is_shown_as_stored(svc_gateway: RunningGateway) -> None:
    """A JSON_FIELDS entry another client wrote, wrong or naming a field that
    is not JSON, changes nothing but what it can decode."""
    with Client(svc_gateway.target) as client:
        client.put_bytes("x.txt", b"x", metadata={JSON_FIELDS: "not json", "n": "1"})
        client.put_bytes("y.txt", b"y", metadata={JSON_FIELDS: '["n","s"]', "n": "1", "s": "{"})
    async with GatewayStorageBackend(svc_gateway.target) as backend:
        assert (await backend.get_metadata("x.txt"))["n"] == "1"
        both = await backend.get_metadata("y.txt")
        assert (both["n"], both["s"]) == (1, "{")


async def test_get_metadata_has_the_gateways_facts(backend: GatewayStorageBackend) -> None:
    await backend.put("a.txt", b"hello", "text/plain", metadata={"owner": "u1"})
    metadata = await backend.get_metadata("a.txt")
    assert metadata["size"] == 5
    assert metadata["crc32c"] == "9a71bb4c"  # CRC32C of b"hello", in hex
    assert metadata["etag"]
    assert metadata["generation"] > 0
    created = datetime.fromisoformat(metadata["created_at"])
    updated = datetime.fromisoformat(metadata["updated_at"])
    assert created.tzinfo is not None
    assert created <= updated
    # Given metadata wins over a field of the same name, as in svc-infra.
    await backend.put("b.txt", b"x", "text/plain", metadata={"etag": "mine"})
    assert (await backend.get_metadata("b.txt"))["etag"] == "mine"


async def test_exists_is_about_objects_not_directories(backend: GatewayStorageBackend) -> None:
    """As svc-infra's memory and S3 backends (its LocalBackend says True for a
    directory, since it checks a path)."""
    await backend.put("dir/file.txt", b"x", "text/plain")
    assert not await backend.exists("dir")
    with pytest.raises(SvcFileNotFoundError):
        await backend.get("dir")


async def test_list_keys_takes_any_string_prefix_in_key_order(
    backend: GatewayStorageBackend,
) -> None:
    """As svc-infra's memory and S3 backends: a prefix is any start of a key
    (its LocalBackend walks a directory named by the prefix)."""
    for key in ("avatars/b.jpg", "avatars/a.jpg", "avocado.txt", "docs/x.pdf"):
        await backend.put(key, b"x", "text/plain")
    assert await backend.list_keys(prefix="av") == ["avatars/a.jpg", "avatars/b.jpg", "avocado.txt"]
    assert await backend.list_keys(prefix="avatars") == ["avatars/a.jpg", "avatars/b.jpg"]
    assert await backend.list_keys(limit=0) == []
    assert await backend.list_keys(limit=-1) == []
    # A prefix no valid key starts with lists nothing, as there.
    assert await backend.list_keys(prefix="a//") == []
    assert await backend.list_keys(prefix="nothing/") == []


async def test_list_keys_pages_past_the_gateways_page_size(
    gateway_factory: Callable[..., RunningGateway],
) -> None:
    running = gateway_factory(STORAGE_BACKEND="memory")
    async with AsyncClient(running.target) as client:
        batch = asyncio.Semaphore(32)

        async def store(n: int) -> None:
            async with batch:
                await client.put_bytes(f"k/{n:04d}", b"")

        await asyncio.gather(*(store(n) for n in range(1005)))
    async with GatewayStorageBackend(running.target) as backend:
        keys = await backend.list_keys(prefix="k/", limit=2000)
        assert keys == [f"k/{n:04d}" for n in range(1005)]
        assert len(await backend.list_keys(limit=1002)) == 1002


async def test_get_url_honours_expires_in(backend: GatewayStorageBackend) -> None:
    await backend.put("a.txt", b"x", "text/plain")

    def expiry(url: str) -> int:
        return int(parse_qs(urlsplit(url).query)["X-Sgw-Expires"][0])

    before = time.time()
    short = expiry(await backend.get_url("a.txt", expires_in=300))
    long = expiry(await backend.get_url("a.txt", expires_in=7200))
    after = time.time()
    assert before + 300 - 1 <= short <= after + 300 + 1
    assert before + 7200 - 1 <= long <= after + 7200 + 1
    # Past the gateway's longest lifetime (STORAGE_URL_MAX_EXPIRATION, 7 days).
    with pytest.raises(SvcStorageError, match="INVALID_EXPIRY"):
        await backend.get_url("a.txt", expires_in=8 * 24 * 3600)


async def test_a_given_client_is_used_and_left_open(svc_gateway: RunningGateway) -> None:
    async with AsyncClient(svc_gateway.target, bucket="default") as client:
        backend = GatewayStorageBackend(client=client)
        assert backend.client is client
        await backend.put("a.txt", b"x", "text/plain")
        await backend.aclose()
        assert await client.get_bytes("a.txt") == b"x"


def test_each_event_loop_gets_its_own_client(svc_gateway: RunningGateway) -> None:
    """A backend made before any loop runs (at an app's import) works in each
    loop that uses it: a grpc.aio channel belongs to one loop."""
    backend = GatewayStorageBackend(svc_gateway.target)

    async def round_trip(data: bytes) -> tuple[bytes, AsyncClient]:
        await backend.put("a.txt", data, "text/plain")
        return await backend.get("a.txt"), backend.client

    first, first_client = asyncio.run(round_trip(b"one"))
    second, second_client = asyncio.run(round_trip(b"two"))
    asyncio.run(backend.aclose())
    assert (first, second) == (b"one", b"two")
    assert first_client is not second_client


async def test_a_served_download_is_whole(backend: GatewayStorageBackend) -> None:
    """A 3 MiB object through get_url: the URL serves every byte."""
    data = bytes(range(256)) * (3 * 4096)
    await backend.put("big.bin", data, "application/octet-stream")
    response = await fetch(await backend.get_url("big.bin", download=True))
    assert response.status_code == 200
    assert response.content == data


async def test_a_content_type_the_gateway_cannot_serve_is_refused(
    backend: GatewayStorageBackend,
) -> None:
    """Not matched: svc-infra's backends store any string as the content
    type; the gateway sends it back as an HTTP header, so it takes header-safe
    media types only, and the put fails before anything is stored."""
    with pytest.raises(SvcStorageError, match="INVALID_CONTENT_TYPE"):
        await backend.put("a.txt", b"x", "not a media type")
    assert not await backend.exists("a.txt")
    await backend.put("b.txt", b"x", "")  # none given: the gateway's default
    assert (await backend.get_metadata("b.txt"))["content_type"] == "application/octet-stream"
