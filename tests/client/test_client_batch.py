"""delete_many and kind, on both clients, against a real gateway on every
driver; and `storagegw rm -r` on one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from storagegw import (
    AccessDenied,
    AsyncClient,
    BucketNotFound,
    Client,
    DeleteResult,
    InvalidKey,
    KeyKind,
    _batch,
)
from storagegw._batch import MAX_DELETE_KEYS
from storagegw._effects import Call
from storagegw.v1 import status_pb2 as wire_status
from storagegw.v1 import storage_pb2 as pb
from tests.access_e2e.tenants import A, policy_gateway
from tests.client.cli_command import CLI, run
from tests.conftest import RunningGateway


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[Client]:
    with Client(gateway.target, timeout=60) as storage:
        yield storage


def test_delete_many_answers_each_key_in_order(client: Client) -> None:
    for key in ("d/1", "d/2"):
        client.put_bytes(key, b"x")
    results = client.delete_many(["d/2", "d/missing", "bad//key", "d/1"])
    assert [(r.key, r.existed, r.ok) for r in results] == [
        ("d/2", True, True),
        ("d/missing", False, True),
        ("bad//key", False, False),
        ("d/1", True, True),
    ]
    bad = results[2].error
    assert isinstance(bad, InvalidKey)
    assert (bad.reason, bad.metadata) == ("INVALID_KEY", {"key": "bad//key"})
    assert list(client.list("d/")) == []


def test_delete_many_splits_its_keys_into_calls_of_a_thousand(client: Client) -> None:
    count = 2 * MAX_DELETE_KEYS + 5
    stored = [f"many/{n:05d}" for n in range(0, count, 200)]  # in all three calls
    for key in stored:
        client.put_bytes(key, b"x")
    # A generator: the client takes any iterable, once.
    results = client.delete_many(f"many/{n:05d}" for n in range(count))
    assert len(results) == count
    assert [r.key for r in results if r.existed] == stored
    assert all(r.ok for r in results)
    assert list(client.list("many/")) == []


def test_delete_many_of_nothing_calls_nothing(client: Client) -> None:
    assert client.delete_many([]) == []


def test_delete_many_takes_keys_not_a_key(client: Client) -> None:
    with pytest.raises(TypeError, match="not one key"):
        client.delete_many("d/1")


def test_delete_many_in_an_unknown_bucket_raises(client: Client) -> None:
    with pytest.raises(BucketNotFound):
        client.delete_many(["k"], bucket="no-such-bucket")


def test_kind_tells_object_prefix_and_nothing(client: Client) -> None:
    info = client.put_bytes("a/b/c.txt", b"data")
    client.put_bytes("a/b!x", b"sibling")  # sorts before "a/b/"
    assert client.kind("a/b/c.txt") == KeyKind("a/b/c.txt", "object", info)
    assert client.kind("a/b") == KeyKind("a/b", "prefix")
    assert client.kind("a") == KeyKind("a", "prefix")
    assert client.kind("a/b!x") == KeyKind("a/b!x", "object", client.head("a/b!x"))
    assert client.kind("a/b/c") is None
    assert client.kind("nothing") is None
    with pytest.raises(BucketNotFound):
        client.kind("a", bucket="no-such-bucket")


async def test_the_async_client_deletes_many_and_tells_kinds(gateway: RunningGateway) -> None:
    async with AsyncClient(gateway.target, timeout=60) as storage:
        info = await storage.put_bytes("dir/file", b"x")
        assert await storage.kind("dir/file") == KeyKind("dir/file", "object", info)
        assert await storage.kind("dir") == KeyKind("dir", "prefix")
        assert await storage.kind("dir/nothing") is None
        results = await storage.delete_many(["dir/file", "dir//bad", "dir/file"])
        assert [(r.key, r.existed, r.ok) for r in results] == [
            ("dir/file", True, True),
            ("dir//bad", False, False),
            ("dir/file", True, True),
        ]
        assert isinstance(results[1].error, InvalidKey)
        assert await storage.kind("dir") is None


def test_delete_result_is_a_plain_value() -> None:
    assert DeleteResult("k", True) == DeleteResult("k", True, None)
    assert DeleteResult("k", False).ok


# ---------------------------------------------------------------- the CLI


def _keys(target: str) -> list[str]:
    listing = run(target, "ls").stdout.decode()
    return listing.split()


def test_rm_r_deletes_the_key_and_its_tree_and_nothing_beside(
    memory_gateway: RunningGateway,
) -> None:
    target = memory_gateway.target
    with Client(target) as storage:
        for key in ("docs", "docs/a", "docs/sub/b", "docs!x", "docsmore/c", "other"):
            storage.put_bytes(key, b"x")
        for n in range(MAX_DELETE_KEYS + 3):  # more than one listed page
            storage.put_bytes(f"docs/many/{n:04d}", b"")
    result = run(target, "rm", "-r", "docs")
    assert (result.stdout, result.stderr) == (b"", b"")
    assert _keys(target) == ["docs!x", "docsmore/c", "other"]
    # Nothing left: not found, unless -f.
    missing = run(target, "rm", "-r", "docs", check=False)
    assert missing.returncode == 3
    assert b"OBJECT_NOT_FOUND" in missing.stderr
    run(target, "rm", "-r", "-f", "docs")
    # A trailing slash names the tree only.
    run(target, "put", "-", "t", stdin=b"x")
    run(target, "put", "-", "t/1", stdin=b"x")
    run(target, "rm", "-r", "t/")
    assert _keys(target) == ["docs!x", "docsmore/c", "other", "t"]


def test_rm_r_names_the_keys_it_could_not_delete(tmp_path: Path) -> None:
    """Tenant A may list and write shared/ but not delete there (the tenants'
    policy): each refused key is named, and the command fails as refused."""
    with policy_gateway({"STORAGE_BACKEND": "memory"}, tmp_path) as running:
        with Client(running.target, token=A.key) as storage:
            storage.put_bytes("shared/x/1", b"x")
            storage.put_bytes("shared/x/2", b"x")
        result = subprocess.run(
            [CLI, "--target", running.target, "rm", "-r", "shared/x"],
            capture_output=True,
            timeout=60,
            check=False,
            env={**os.environ, "STORAGEGW_TOKEN": A.key},
        )
        assert result.returncode == 8  # permission denied
        lines = result.stderr.decode().splitlines()
        # The key itself too: a refused key tells nothing of whether it exists.
        assert [line.split(" not deleted: ")[0] for line in lines[:3]] == [
            "storagegw: error: 'shared/x'",
            "storagegw: error: 'shared/x/1'",
            "storagegw: error: 'shared/x/2'",
        ]
        assert all("(ACCESS_DENIED)" in line for line in lines)
        assert lines[3] == "storagegw: error: 3 of 3 keys not deleted (ACCESS_DENIED)"
        assert len(lines) == 4
        with Client(running.target, token=A.key) as storage:
            assert [o.key for o in storage.list("shared/")] == ["shared/x/1", "shared/x/2"]


def test_rm_r_of_an_invalid_prefix_is_an_invalid_key(memory_gateway: RunningGateway) -> None:
    result = run(memory_gateway.target, "rm", "-r", "a//b", check=False)
    assert result.returncode == 6  # invalid argument or key
    assert b"(INVALID_KEY)" in result.stderr


def test_rm_r_refuses_an_empty_prefix(memory_gateway: RunningGateway) -> None:
    with Client(memory_gateway.target) as storage:
        storage.put_bytes("kept", b"x")
    result = run(memory_gateway.target, "rm", "-r", "", check=False)
    assert result.returncode != 0
    assert b"non-empty PREFIX" in result.stderr
    assert _keys(memory_gateway.target) == ["kept"]


# ---------------------------------------------------------------- the flows, by hand


def test_the_delete_many_flow_sends_a_call_per_thousand_keys_and_maps_statuses() -> None:
    """No gateway: the test plays the transport, so each call's keys and the
    mapping of a key's status to its exception are seen exactly."""
    keys = [f"k{n}" for n in range(2 * MAX_DELETE_KEYS + 1)]
    flow = _batch.delete_many("b", iter(keys), 5.0)
    sent: list[list[str]] = []
    effect = next(flow)
    while True:
        assert isinstance(effect, Call)
        assert (effect.method, effect.timeout) == ("DeleteObjects", 5.0)
        request = effect.request
        assert isinstance(request, pb.DeleteObjectsRequest)
        assert request.bucket == "b"
        sent.append(list(request.keys))
        response = pb.DeleteObjectsResponse()
        for key in request.keys:
            result = response.results.add(key=key, existed=key == "k1")
            if key == "k2":
                result.status.code = grpc.StatusCode.PERMISSION_DENIED.value[0]
                result.status.message = "no grant"
                detail = result.status.details.add()
                detail.type_url = "type.googleapis.com/google.rpc.ErrorInfo"
                info = wire_status.RpcErrorInfo(reason="ACCESS_DENIED", domain="storagegw")
                info.metadata["action"] = "delete"
                detail.value = info.SerializeToString()
        try:
            effect = flow.send(response)
        except StopIteration as end:
            results = end.value
            break
    assert [len(batch) for batch in sent] == [MAX_DELETE_KEYS, MAX_DELETE_KEYS, 1]
    assert [key for batch in sent for key in batch] == keys
    assert [r.key for r in results] == keys
    assert [r.key for r in results if r.existed] == ["k1"]
    (refused,) = [r for r in results if not r.ok]
    assert refused.key == "k2"
    assert isinstance(refused.error, AccessDenied)
    assert (refused.error.message, refused.error.metadata) == ("no grant", {"action": "delete"})
    assert refused.error.code is grpc.StatusCode.PERMISSION_DENIED
