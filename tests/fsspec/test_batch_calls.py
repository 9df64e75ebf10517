"""GatewayFileSystem's use of the batch and lookup calls: `rm` deletes
through DeleteObjects, `info`/`exists`/`isfile`/`isdir` ask one Head that
reports prefixes; on a real gateway (memory backend, and one with the
tenants' access policy for refused keys)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest

from storagegw import AccessDenied, Client
from storagegw.fsspec import GatewayFileSystem
from tests.access_e2e.tenants import A, policy_gateway
from tests.conftest import RunningGateway
from tests.log_records import AccessLog


@pytest.fixture
def fs(memory_gateway: RunningGateway) -> Iterator[GatewayFileSystem]:
    system = GatewayFileSystem(target=memory_gateway.target, skip_instance_cache=True)
    yield system
    system.close()


def calls(access_log: AccessLog, method: str) -> int:
    return sum(1 for record in access_log.records if record.rpc_method == method)


def test_rm_of_a_tree_is_one_delete_objects_call(
    fs: GatewayFileSystem, access_log: AccessLog
) -> None:
    fs.pipe({f"tree/{i % 3}/f{i}": b"x" for i in range(40)})
    fs.pipe_file("tree.txt", b"keep")
    fs.rm("tree", recursive=True)
    access_log.wait("DeleteObjects")
    assert fs.find("") == ["tree.txt"]
    assert calls(access_log, "DeleteObjects") == 1
    assert calls(access_log, "Delete") == 0


def test_lookups_are_one_head_each(fs: GatewayFileSystem, access_log: AccessLog) -> None:
    fs.pipe_file("dir/sub/file.txt", b"hello")
    access_log.wait("Put")
    answers = [
        fs.isfile("dir/sub/file.txt"),
        fs.isdir("dir/sub"),
        fs.exists("dir"),
        fs.exists("nothing"),
        fs.info("dir")["type"],
        fs.isdir("nothing"),
    ]
    assert answers == [True, True, True, False, "directory", False]
    access_log.wait(lambda record: calls(access_log, "Head") == 6)
    assert calls(access_log, "List") == 0


def test_isdir_of_an_object_that_is_also_a_prefix(fs: GatewayFileSystem) -> None:
    fs.pipe({"both": b"an object", "both/inside": b"and a directory"})
    assert fs.isfile("both")
    assert fs.isdir("both")
    assert not fs.isdir("both/inside")


def test_rm_names_the_keys_it_may_not_delete(tmp_path: Path) -> None:
    """Tenant A may list and write shared/ but not delete there."""
    with policy_gateway({"STORAGE_BACKEND": "memory"}, tmp_path) as running:
        with Client(running.target, token=A.key) as storage:
            storage.put_bytes("shared/x/1", b"x")
            storage.put_bytes("shared/x/2", b"x")
        fs = GatewayFileSystem(target=running.target, token=A.key, skip_instance_cache=True)
        try:
            with pytest.raises(PermissionError) as refused:
                fs.rm("shared/x", recursive=True)
            assert refused.value.errno == errno.EACCES
            assert refused.value.filename == "shared/x/1"
            assert isinstance(refused.value.__cause__, AccessDenied)
            assert fs.find("shared/x") == ["shared/x/1", "shared/x/2"]
        finally:
            fs.close()
