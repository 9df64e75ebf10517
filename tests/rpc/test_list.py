"""List: lexicographic order, pagination, delimiter roll-up, start_after, over 2,500 keys."""

from __future__ import annotations

import random
import subprocess
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import BACKENDS, REPO, backend_env, run_gateway
from tests.rpc_calls import call_error, put, put_messages


def _keys() -> list[str]:
    rng = random.Random(7)
    keys = {f"logs/{day:02d}/{n:04d}.txt" for day in range(1, 21) for n in range(100)}
    keys |= {f"img/{n}.png" for n in range(300)}
    keys |= {f"top-{n}" for n in range(150)}
    keys |= {"a", "a.b", "a0", "a/b", "é/x", "z/é", "Z", "~tilde", "日本/1"}
    keys.discard("a")  # 'a' and 'a/b' cannot both exist on the local backend
    while len(keys) < 2500:
        keys.add(f"rand/{rng.randrange(10**9):09d}")
    return sorted(keys, key=str.encode)


KEYS = _keys()


@pytest.fixture(scope="module", params=BACKENDS)
def filled(request, tmp_path_factory):
    """One gateway per backend holding KEYS, shared by the read-only tests below."""
    data_dir = tmp_path_factory.mktemp(f"list-{request.param}")
    with (
        run_gateway(backend_env(request, request.param), data_dir) as running,
        grpc.insecure_channel(running.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda key: put(stub, key, key.encode()), KEYS))
        yield stub


def list_all(stub, **fields):
    keys, prefixes, pages = [], [], 0
    token = ""
    while True:
        page = stub.List(pb.ListRequest(page_token=token, **fields))
        pages += 1
        keys += [o.key for o in page.objects]
        prefixes += list(page.common_prefixes)
        token = page.next_page_token
        if not token:
            return keys, prefixes, pages


def test_full_listing_in_byte_order_with_pages(filled):
    assert len(KEYS) == 2500
    keys, prefixes, pages = list_all(filled)
    assert keys == KEYS
    assert prefixes == []
    assert pages == 3  # default and maximum page size is 1000


def test_page_size_is_respected_and_capped(filled):
    page = filled.List(pb.ListRequest(page_size=7))
    assert [o.key for o in page.objects] == KEYS[:7]
    assert page.next_page_token
    page = filled.List(pb.ListRequest(page_size=5000))
    assert len(page.objects) == 1000


@pytest.mark.parametrize("page_size", [1, 333, 1000])
def test_every_key_exactly_once_at_any_page_size(filled, page_size):
    keys, _, pages = list_all(filled, page_size=page_size)
    assert keys == KEYS
    assert pages == -(-len(KEYS) // page_size)


def test_prefix(filled):
    keys, _, _ = list_all(filled, prefix="logs/07/")
    assert keys == [k for k in KEYS if k.startswith("logs/07/")]
    assert len(keys) == 100


def test_delimiter_rolls_up_common_prefixes(filled):
    keys, prefixes, _ = list_all(filled, delimiter="/")
    assert keys == [k for k in KEYS if "/" not in k]
    expected = sorted({k.split("/")[0] + "/" for k in KEYS if "/" in k}, key=str.encode)
    assert prefixes == expected
    assert "logs/" in prefixes
    assert "é/" in prefixes


def test_delimiter_with_prefix_and_small_pages(filled):
    keys, prefixes, pages = list_all(filled, prefix="logs/", delimiter="/", page_size=3)
    assert keys == []
    assert prefixes == [f"logs/{d:02d}/" for d in range(1, 21)]
    assert pages == 7


def test_start_after(filled):
    start = KEYS[1234]
    keys, _, _ = list_all(filled, start_after=start)
    assert keys == KEYS[1235:]


def test_entries_carry_size_etag_time_and_type(filled):
    page = filled.List(pb.ListRequest(prefix="img/1.png"))
    (entry,) = page.objects
    head = filled.Head(pb.HeadRequest(key="img/1.png")).object
    assert entry.size == len(b"img/1.png")
    assert entry.etag == head.etag
    assert entry.update_time == head.update_time
    assert entry.content_type == "application/octet-stream"
    assert entry.bucket == "default"


def test_bad_page_token(filled):
    code, reason, _ = call_error(filled.List, pb.ListRequest(page_token="not-a-token"))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")


def test_negative_page_size(filled):
    code, reason, _ = call_error(filled.List, pb.ListRequest(page_size=-1))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


def test_nothing_matching_lists_nothing(filled):
    page = filled.List(pb.ListRequest(prefix="nothing-here/"))
    assert list(page.objects) == []
    assert page.next_page_token == ""


# --- pages bounded in bytes ------------------------------------------------------

CLI = str(REPO / ".venv" / "bin" / "storagegw")
LEGAL_METADATA = {"m": "x" * 7999}  # 8,000 bytes, under the 8 KiB limit
MESSAGE_LIMIT = 4 * 1024 * 1024


def _fill(stub, keys, **spec_fields):
    def one(key):
        spec = pb.PutSpec(key=key, **spec_fields)
        stub.Put(put_messages(key, b"v", spec=spec))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, keys))


def _pages(stub, **fields):
    """Every page of a listing, raw (so that their sizes can be checked)."""
    pages, token = [], ""
    while True:
        page = stub.List(pb.ListRequest(page_token=token, **fields))
        pages.append(page)
        token = page.next_page_token
        if not token:
            return pages


@pytest.mark.parametrize("backend", BACKENDS)
def test_legal_metadata_never_makes_a_page_too_large(request, tmp_path, backend):
    """520 objects with 8,000 bytes of metadata each: over 4 MiB in all, so
    the default page (1,000 entries) must end early, and the listing go on."""
    keys = sorted((f"meta/{n:04d}" for n in range(520)), key=str.encode)
    with (
        run_gateway(backend_env(request, backend), tmp_path) as running,
        grpc.insecure_channel(running.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        _fill(stub, keys, metadata=LEGAL_METADATA)
        pages = _pages(stub)
        assert [o.key for page in pages for o in page.objects] == keys
        assert all(page.ByteSize() <= MESSAGE_LIMIT for page in pages)
        if not backend.startswith("s3"):  # S3 listings carry no metadata
            assert len(pages) >= 2
            assert all(o.metadata == LEGAL_METADATA for page in pages for o in page.objects)
        listed = subprocess.run(
            [CLI, "--target", running.target, "ls"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split() == keys


@pytest.mark.parametrize("backend", BACKENDS)
def test_pages_cut_by_bytes_resume_right_after_their_last_entry(request, tmp_path, backend):
    """With a small message limit, pages end after a few long keys and every
    token resumes right after the last entry returned: objects and common
    prefixes alike, each exactly once, in order."""
    tail = "/".join(["s" * 200] * 4)  # segments a filesystem can hold
    long_keys = [f"long/{n:03d}/{tail}" for n in range(60)]
    grouped = [f"g/{n:03d}/x" for n in range(200)]
    settings = {"GATEWAY_CHUNK_SIZE": "4KiB", "GATEWAY_MAX_MESSAGE_SIZE": "68KiB"}
    with (
        run_gateway({**backend_env(request, backend), **settings}, tmp_path) as running,
        grpc.insecure_channel(running.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        _fill(stub, long_keys + grouped)
        pages = _pages(stub)
        listed = [o.key for page in pages for o in page.objects]
        assert listed == sorted(grouped + long_keys, key=str.encode)
        assert len(pages) > 10
        assert all(page.ByteSize() <= 68 * 1024 for page in pages)

        pages = _pages(stub, prefix="g/", delimiter="/")
        assert [p for page in pages for p in page.common_prefixes] == [
            f"g/{n:03d}/" for n in range(200)
        ]
        assert len(pages) >= 2

        pages = _pages(stub, delimiter="/")
        assert [p for page in pages for p in page.common_prefixes] == ["g/", "long/"]

        pages = _pages(stub, prefix="long/", start_after=long_keys[10])
        assert [o.key for page in pages for o in page.objects] == long_keys[11:]
