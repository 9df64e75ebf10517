"""The bucket's upload policy on gRPC Puts, on real gateways (tests/drivers.py
drivers, gateways.DRIVERS), with the corpus of real file headers declared
truthfully and falsely: a refusal leaves nothing under the key; and the
README's example policy as a gateway's configuration."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from storagegw import Client
from storagegw.v1 import storage_pb2 as pb
from tests.conftest import run_gateway
from tests.rpc_calls import call_error, crc
from tests.upload_policy.file_headers import BY_NAME, CORPUS, Sample
from tests.upload_policy.gateways import (
    TRUTHFUL_ALLOWED,
    KiB,
    Stub,
    assert_absent,
    assert_refused,
    chunked,
    error_info,
    mismatch,
    refused,
)

# ------------------------------------------------------------------------- Put


@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: s.name)
def test_put_lets_in_what_is_declared_truly_and_allowed(client: Client, sample: Sample) -> None:
    key = f"true{sample.suffix}"
    if sample.name in TRUTHFUL_ALLOWED:
        info = client.put_bytes(key, sample.data, content_type=sample.declared)
        assert info.size == len(sample.data)
        assert client.get_bytes(key) == sample.data
        return
    # Denied by what it declares: refused before a byte is read.
    error = refused(client.put_bytes, key, sample.data, content_type=sample.declared)
    expected = {"declared": sample.declared, "bucket": "typed"}
    assert_refused(error, "TYPE_NOT_ALLOWED", expected, grpc.StatusCode.INVALID_ARGUMENT)
    assert "sniffed" not in error.metadata
    assert_absent(client, key)


@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: s.name)
def test_put_refuses_a_false_declaration(client: Client, sample: Sample) -> None:
    key = f"false{sample.suffix}"
    error = refused(client.put_bytes, key, sample.data, content_type=sample.false)
    expected = mismatch(sample, sample.false)
    assert_refused(error, "TYPE_MISMATCH", expected, grpc.StatusCode.INVALID_ARGUMENT)
    assert_absent(client, key)


@pytest.mark.parametrize("name", ["elf", "shell", "html"])
def test_put_declaring_nothing_is_judged_by_its_bytes(client: Client, name: str) -> None:
    sample = BY_NAME[name]
    error = refused(client.put_bytes, "undeclared", sample.data)
    expected = mismatch(sample, "application/octet-stream")
    assert_refused(error, "TYPE_NOT_ALLOWED", expected, grpc.StatusCode.INVALID_ARGUMENT)
    assert_absent(client, "undeclared")
    # What is not denied goes in undeclared: the sniff finds nothing wrong.
    client.put_bytes("undeclared", BY_NAME["pdf"].data)
    assert client.get_bytes("undeclared") == BY_NAME["pdf"].data


def test_allowed_types_judge_the_sniffed_type(client: Client) -> None:
    for sample in CORPUS:
        key = f"{sample.name}{sample.suffix}"
        if sample.sniffed.startswith("image/"):
            client.put_bytes(key, sample.data, bucket="images")
            continue
        error = refused(client.put_bytes, key, sample.data, bucket="images")
        expected = mismatch(sample, "application/octet-stream", "images")
        assert_refused(error, "TYPE_NOT_ALLOWED", expected, grpc.StatusCode.INVALID_ARGUMENT)
        assert_absent(client, key, "images")
    # A PNG declared a PDF is refused before its bytes are read: not an image.
    error = refused(client.put_bytes, "a.png", BY_NAME["png"].data, bucket="images",
                    content_type="application/pdf")  # fmt: skip
    assert error.reason == "TYPE_NOT_ALLOWED"
    assert error.metadata["declared"] == "application/pdf"


def test_size_suffix_and_metadata_rules(client: Client) -> None:
    owner = {"owner": "ops"}
    data = os.urandom(4 * KiB)
    put = client.put_bytes
    error = refused(put, "a.exe", data, bucket="sized", metadata=owner)
    expected = {"key": "a.exe", "allowed": ".bin, .txt"}
    assert_refused(error, "KEY_SUFFIX_NOT_ALLOWED", expected, grpc.StatusCode.INVALID_ARGUMENT)
    error = refused(put, "a.bin", data, bucket="sized", metadata={"team": "x"})
    expected = {"missing": "owner"}
    assert_refused(error, "METADATA_REQUIRED", expected, grpc.StatusCode.INVALID_ARGUMENT)
    error = refused(put, "a.bin", data[:100], bucket="sized", metadata=owner)
    expected = {"min_size": "1024", "size": "100"}
    assert_refused(error, "OBJECT_TOO_SMALL", expected, grpc.StatusCode.OUT_OF_RANGE)
    big = os.urandom(64 * KiB + 1)
    error = refused(put, "a.bin", big, bucket="sized", metadata=owner)
    assert_refused(error, "OBJECT_TOO_LARGE", {}, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert_absent(client, "a.bin", "sized")
    assert_absent(client, "a.exe", "sized")
    assert put("A.BIN", data, bucket="sized", metadata=owner).size == len(data)


def test_an_undeclared_size_is_bounded_as_bytes_arrive(client: Client, tmp_path: Path) -> None:
    """A stream that declares no size: the maximum is held as bytes come,
    the minimum at the end, before the commit."""
    owner = {"owner": "ops"}
    chunks = [os.urandom(16 * KiB) for _ in range(5)]
    error = refused(client.put_file, "s.bin", iter(chunks), bucket="sized", metadata=owner)
    assert error.reason == "OBJECT_TOO_LARGE"
    error = refused(client.put_file, "s.bin", iter([b"x" * 10]), bucket="sized", metadata=owner)
    assert (error.reason, error.metadata["size"]) == ("OBJECT_TOO_SMALL", "10")
    assert_absent(client, "s.bin", "sized")


def test_small_chunks_are_held_back_until_the_window_is_sniffed(stub: Stub) -> None:
    """Chunks smaller than the sniff window wait for it, each with the CRC32C
    sent with it (the last, large one's is combined rather than computed
    again): the object's CRC32C comes out right, and an executable behind a
    PNG's name is refused before any of its chunks is written."""
    png = BY_NAME["png"].padded(200 * KiB)
    spec = pb.PutSpec(key="small-chunks.png", content_type="image/png")
    response: pb.PutResponse = stub.Put(chunked(spec, png, [100, 100, 100]))
    assert (response.object.size, response.object.crc32c) == (len(png), crc(png))
    chunks = stub.Get(pb.GetRequest(key="small-chunks.png"))
    assert b"".join(r.chunk.content for r in chunks) == png
    elf = BY_NAME["elf"].padded(200 * KiB)
    spec = pb.PutSpec(key="small-chunks.elf.png", content_type="image/png")
    _, reason, metadata = error_info(stub.Put, chunked(spec, elf, [100, 100, 100]))
    assert (reason, metadata["sniffed"]) == ("TYPE_MISMATCH", "application/x-executable")
    head = pb.HeadRequest(key="small-chunks.elf.png")
    assert call_error(stub.Head, head)[1] == "OBJECT_NOT_FOUND"


# --------------------------------------------------------------- the README's


def test_the_readme_policy_does_what_it_says(tmp_path: Path) -> None:
    """The README's upload policy example, as a gateway's configuration."""
    from tests.project.readme_blocks import BLOCKS

    (block,) = [b for b in BLOCKS if "[buckets.images.upload_policy]" in b.text]
    config = tmp_path / "buckets.toml"
    config.write_text(block.text)
    env = {"GATEWAY_CONFIG": str(config)}
    with run_gateway(env, tmp_path / "data") as gateway, Client(gateway.target) as client:
        png = BY_NAME["png"].padded(2 * KiB)
        owner = {"owner": "ops"}
        client.put_bytes("cat.png", png, bucket="images", metadata=owner)
        assert client.get_bytes("cat.png", bucket="images") == png
        elf = BY_NAME["elf"].padded(2 * KiB)
        put = client.put_bytes
        error = refused(put, "cat2.png", elf, bucket="images", metadata=owner,
                        content_type="image/png")  # fmt: skip
        assert (error.reason, error.metadata["sniffed"]) == (
            "TYPE_MISMATCH",
            "application/x-executable",
        )
        error = refused(put, "cat.gif", png, bucket="images", metadata=owner)
        assert error.reason == "KEY_SUFFIX_NOT_ALLOWED"
        error = refused(put, "cat3.png", png, bucket="images")
        assert error.reason == "METADATA_REQUIRED"
        error = refused(put, "cat4.png", png[:100], bucket="images", metadata=owner)
        assert error.reason == "OBJECT_TOO_SMALL"
        assert_absent(client, "cat2.png", "images")
