"""The local backend's data directory under a real gateway, over gRPC: files the
gateway did not write are no objects, driver errors stay in the log, and the
directories it makes are private."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from gateway.backends.local import format as local_format

# --- files the gateway did not write, over gRPC ------------------------------------


def _header_file(doc: dict[str, Any] | bytes, data: bytes = b"") -> bytes:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return local_format.MAGIC + len(raw).to_bytes(4, "big") + raw + data


_GOOD_DOC: dict[str, Any] = {
    "content_type": "text/plain",
    "metadata": {},
    "size": 4,
    "etag": "e",
    "generation": 1,
    "crc32c": None,
    "sha256": "00" * 32,
    "create_time_ns": 1,
    "update_time_ns": 1,
}

FOREIGN_FILES = {
    "foreign": b"someone else's notes",
    "empty": b"",
    "bad-magic": b"SGW2" + b"\x00" * 20,
    "huge-header-length": local_format.MAGIC + b"\xff\xff\xff\xff",
    "truncated-header": local_format.MAGIC + b"\x00\x00\x01\x00{",
    "not-json": _header_file(b"{not json"),
    "header-not-an-object": _header_file(b"[1, 2]"),
    "shorter-than-header-says": _header_file(_GOOD_DOC, b"ab"),
    "no-sha256": _header_file({**_GOOD_DOC, "sha256": None}, b"abcd"),
    "negative-size": _header_file({**_GOOD_DOC, "size": -1}),
    "lone-surrogate": _header_file(
        b'{"content_type":"\\udc80","metadata":{},"size":0,"etag":"e","generation":1,'
        b'"sha256":"' + b"00" * 32 + b'","create_time_ns":1,"update_time_ns":1}'
    ),
}


@pytest.fixture
def grpc_stub(local_gateway: Any) -> Any:
    import grpc

    from storagegw.v1 import storage_pb2_grpc

    with grpc.insecure_channel(local_gateway.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


@pytest.mark.parametrize("name", sorted(FOREIGN_FILES))
def test_foreign_and_damaged_files_are_no_objects_to_every_call(
    local_gateway: Any, grpc_stub: Any, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """Head, Get, List and Delete agree: such a file is no object. Nothing
    answers INTERNAL or shows a server path; the log names the file."""
    import grpc

    from storagegw.v1 import storage_pb2 as pb
    from tests.rpc_calls import call_error
    from tests.rpc_calls import put as rpc_put

    objects = local_gateway.data_dir / "default" / "objects"
    rpc_put(grpc_stub, "real", b"real")
    stray = objects / name
    stray.write_bytes(FOREIGN_FILES[name])
    with caplog.at_level(logging.WARNING, logger="gateway.backends.local.format"):
        for call, request in [
            (grpc_stub.Head, pb.HeadRequest(key=name)),
            (grpc_stub.Get, pb.GetRequest(key=name)),
            (
                grpc_stub.Copy,
                pb.CopyRequest(source_key=name, destination_key="copy"),
            ),
        ]:
            code, reason, message = call_error(call, request)
            assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")
            assert str(local_gateway.data_dir) not in message
        listed = grpc_stub.List(pb.ListRequest())
        assert [o.key for o in listed.objects] == ["real"]
        assert grpc_stub.Delete(pb.DeleteRequest(key=name)).existed is False
        assert stray.read_bytes() == FOREIGN_FILES[name]  # left alone
        conditional = pb.DeleteRequest(key=name, preconditions=pb.Preconditions(if_match="*"))
        code, reason, _ = call_error(grpc_stub.Delete, conditional)
        assert reason in ("PRECONDITION_FAILED", "OBJECT_NOT_FOUND")
        assert code != grpc.StatusCode.INTERNAL
    assert any(str(stray) in record.getMessage() for record in caplog.records)
    # A Put to the key replaces the file with an object.
    rpc_put(grpc_stub, name, b"now an object")
    assert grpc_stub.Head(pb.HeadRequest(key=name)).object.size == len(b"now an object")


def test_a_fifo_in_the_root_is_no_object(local_gateway: Any, grpc_stub: Any) -> None:
    import grpc

    from storagegw.v1 import storage_pb2 as pb
    from tests.rpc_calls import error_reason

    objects = local_gateway.data_dir / "default" / "objects"
    os.mkfifo(objects / "fifo")
    with pytest.raises(grpc.RpcError) as failure:
        grpc_stub.Head(pb.HeadRequest(key="fifo"), timeout=20)
    assert error_reason(failure.value) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")
    assert grpc_stub.Delete(pb.DeleteRequest(key="fifo"), timeout=20).existed is False
    assert list(grpc_stub.List(pb.ListRequest(), timeout=20).objects) == []


def test_unexpected_driver_error_is_logged_and_detail_free(
    local_gateway: Any, grpc_stub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An object file cut short while it is being read: the client gets a
    bare INTERNAL, the log gets the error and its traceback."""
    import grpc

    from storagegw.v1 import storage_pb2 as pb
    from tests.rpc_calls import put as rpc_put

    size = 32 * 1024 * 1024
    rpc_put(grpc_stub, "big", os.urandom(1024) * (size // 1024))
    path = local_gateway.data_dir / "default" / "objects" / "big"
    with caplog.at_level(logging.ERROR, logger="storagegw"):
        responses = grpc_stub.Get(pb.GetRequest(key="big"))
        next(responses)
        os.truncate(path, 1024)
        with pytest.raises(grpc.RpcError) as failure:
            for _ in responses:
                pass
    error = failure.value
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error; see the gateway's log"
    assert any(
        "unexpected error in Get" in record.getMessage() and record.exc_info
        for record in caplog.records
    )


def test_data_directories_are_private(tmp_path: Path) -> None:
    """Every directory the gateway creates (base path and its parents, bucket
    root, objects and their key directories, temp files, uploads, the URL
    secret's) is 0700: other local users cannot list key names."""
    import grpc

    from storagegw.v1 import storage_pb2 as pb
    from storagegw.v1 import storage_pb2_grpc
    from tests.conftest import run_gateway
    from tests.rpc_calls import put as rpc_put

    fresh = tmp_path / "fresh"
    with (
        run_gateway({"STORAGE_BACKEND": "local"}, fresh / "data") as running,
        grpc.insecure_channel(running.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        rpc_put(stub, "a/b/c.txt", b"x")
        stub.StartUpload(pb.StartUploadRequest(spec=pb.PutSpec(key="d/e/f")))
    directories = [fresh] + [path for path in fresh.rglob("*") if path.is_dir()]
    assert len(directories) >= 8
    modes = {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in directories}
    assert set(modes.values()) == {"0o700"}, modes


def test_relative_base_path_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """STORAGE_BASE_PATH may be relative (the default, ./data, is)."""
    from tests.conftest import run_gateway

    monkeypatch.chdir(tmp_path)
    with run_gateway({"STORAGE_BACKEND": "local"}, Path("rel")):
        pass
    assert stat.S_IMODE((tmp_path / "rel" / "default" / "objects").stat().st_mode) == 0o700
