"""Key validation: one set of rules, applied to every RPC, and no key escapes the root."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain.errors import GatewayError
from gateway.domain.keys import validate_key, validate_prefix
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import run_gateway
from tests.rpc_calls import call_error, get, put, put_messages

BAD_KEYS = {
    "empty": "",
    "leading slash": "/etc/passwd",
    "trailing slash": "dir/",
    "double slash": "a//b",
    "dot segment": "a/./b",
    "dot-dot segment": "../escape",
    "dot-dot inside": "a/../../b",
    "only dot-dot": "..",
    "backslash": "a\\b",
    "windows escape": "..\\..\\x",
    "NUL": "a\x00b",
    "newline": "a\nb",
    "DEL": "a\x7fb",
    "C1 control": "a\x85b",
    "not NFC": unicodedata.normalize("NFD", "café"),
    "too long": "k" * 1025,
    "too long in UTF-8": "é" * 513,
}

GOOD_KEYS = [
    "a",
    "/".join(["k" * 204] * 5),  # 1024 bytes
    "/".join(["é" * 127] * 4),  # multi-byte, 1019 bytes
    "dir/sub/file.txt",
    ".hidden",
    "a/.b/..c/...",
    "spaces in name ",
    "emoji/😀",
    "日本語/ファイル",
    "-dash",
    "a:b;c=d?e#f&g%20",
]


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_bad_keys_are_refused_by_every_rpc(stub, key):
    calls = [
        (stub.Put, iter(put_messages(key, b"x"))),
        (stub.Get, pb.GetRequest(key=key)),
        (stub.Head, pb.HeadRequest(key=key)),
        (stub.Delete, pb.DeleteRequest(key=key)),
        (stub.SignUrl, pb.SignUrlRequest(key=key, method=pb.SIGNED_METHOD_GET)),
        (stub.Copy, pb.CopyRequest(source_key="src", destination_key=key)),
    ]
    for call, request in calls:
        code, reason, message = call_error(call, request)
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_KEY"), call
        assert "invalid key" in message
    assert list(stub.List(pb.ListRequest()).objects) == []


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_good_keys_round_trip(stub, key):
    put(stub, key, key.encode())
    assert get(stub, key)[1] == key.encode()
    assert [o.key for o in stub.List(pb.ListRequest()).objects] == [key]


def test_long_segment_is_a_local_limit_only(gateway_factory):
    key = "k" * 1024
    memory = gateway_factory(STORAGE_BACKEND="memory")
    with grpc.insecure_channel(memory.target) as channel:
        assert put(storage_pb2_grpc.StorageServiceStub(channel), key, b"x").size == 1
    local = gateway_factory(STORAGE_BACKEND="local", GATEWAY_DEFAULT_BUCKET="local")
    with grpc.insecure_channel(local.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        code, reason, message = call_error(stub.Put, iter(put_messages(key, b"x")))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_KEY")
    assert "255 bytes" in message


@pytest.mark.parametrize("prefix", ["/a", "a//", "../", "a/../", "a\\", "x\x00"])
def test_bad_list_prefixes(stub, prefix):
    code, reason, _ = call_error(stub.List, pb.ListRequest(prefix=prefix))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_KEY")


@pytest.mark.parametrize("prefix", ["", "a", "a/", "a/.", "a/b", ".."])
def test_good_list_prefixes(stub, prefix):
    assert list(stub.List(pb.ListRequest(prefix=prefix)).objects) == []


def test_invalid_key_error_names_the_rule(stub):
    _, _, message = call_error(stub.Head, pb.HeadRequest(key="a/../b"))
    assert "'..' path segment" in message
    _, _, message = call_error(stub.Head, pb.HeadRequest(key=BAD_KEYS["not NFC"]))
    assert "NFC" in message


# Keys built from the pieces that cause trouble, plus arbitrary text.
_PIECES = st.sampled_from(["..", ".", "", "a", "é", "e\u0301", "\\", "\x00", "\n", "~", "%2e"])
_KEYS = st.one_of(
    st.text(max_size=40),
    st.lists(_PIECES, max_size=8).map("/".join),
    st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=6).map("/".join),
)


def _files_under(root: Path) -> set[Path]:
    return {Path(d) / f for d, _, files in os.walk(root) for f in files}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=_KEYS)
def test_any_key_is_refused_or_stays_inside_the_root(tmp_path_factory, key):
    """For any string: INVALID_ARGUMENT, or the object lands under the bucket's root."""
    outer = tmp_path_factory.mktemp("outer")
    data_dir = outer / "a" / "b" / "c"
    objects_root = data_dir / "default" / "objects"
    with (
        run_gateway({"STORAGE_BACKEND": "local"}, data_dir) as running,
        grpc.insecure_channel(running.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        before = _files_under(outer)
        try:
            put(stub, key, b"payload")
            refused = None
        except grpc.RpcError as error:
            refused = error
        if refused is not None:
            assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.details()
            with pytest.raises(GatewayError):
                validate_key(key)
            assert _files_under(outer) == before
            return
        validate_key(key)  # accepted keys satisfy the documented rules
        # Besides the object, a commit may create the empty lock file of the
        # key's stripe (named by a hash of the key, never by the key).
        locks_root = data_dir / "default" / "locks"
        new_files = _files_under(outer) - before
        new_locks = {f for f in new_files if f.parent == locks_root}
        assert all(f.stat().st_size == 0 and len(f.name) == 3 for f in new_locks)
        new_files -= new_locks
        assert len(new_files) == 1
        (path,) = new_files
        assert path.resolve().is_relative_to(objects_root.resolve())
        assert get(stub, key)[1] == b"payload"


@given(st.text(max_size=30))
def test_prefix_rules_match_key_rules(text):
    """A valid key is always a valid prefix (List with its own key finds it)."""
    try:
        validate_key(text)
    except GatewayError:
        return
    validate_prefix(text)
