"""Direct uploads to a presigning store (a real Ceph RGW, and moto), checked
by FinalizeUpload or the sweep on a real clamd, and the rescan of stored
objects: bytes the gateway never saw are never visible under their key
until they pass; EICAR ends in quarantine; a falsely typed file is refused."""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gateway.backends import registry
from gateway.core.pending_sweep import sweep_pending
from storagegw import (
    Client,
    MalwareDetected,
    NotFound,
    PreconditionFailed,
    SignedUrl,
    StorageError,
    cli,
)
from tests.clamd_server import EICAR, EICAR_BODY_SIGNATURE, ClamdServer
from tests.conftest import RunningGateway, run_gateway
from tests.drivers import backend_env
from tests.scanning.scan_gateways import (
    BIG,
    MIB,
    QUARANTINE,
    STAGING,
    assert_not_visible,
    assert_quarantined,
    pending_keys,
    with_eicar,
)
from tests.servers import free_port
from tests.upload_policy.file_headers import BY_NAME

SECRET = "direct-upload-tests-secret"


def bucket_table(env: dict[str, str], name: str, prefix: str) -> str:
    """A [buckets.NAME] table on the store of env (tests/drivers.py), under prefix."""
    kind = env["STORAGE_BACKEND"]
    spec = registry.spec_of(kind)
    assert spec is not None
    fields = {field: env[var] for field, var in spec.env_names.items() if var in env}
    fields["prefix"] = prefix
    lines = [f"[buckets.{name}]", f'backend = "{kind}"']
    lines += [f"{field} = {json.dumps(value)}" for field, value in fields.items()]
    return "\n".join(lines) + "\n"


def config_text(env: dict[str, str], clamd: str) -> str:
    """direct: scanned (quarantine) and typed; typed: an upload policy
    alone; raw and lenient share the
    prefix of rescanned: raw not scanned, lenient scanned by a dead clamd
    storing unscanned objects, rescanned scanned by the live one."""
    dead = f"tcp://127.0.0.1:{free_port()}"
    scan = f"[buckets.{{}}.scan]\nclamd = '{{}}'\nquarantine_bucket = '{QUARANTINE}'\n"
    return (
        "default_bucket = 'direct'\n"
        + bucket_table(env, "direct", "direct/")
        + scan.format("direct", clamd)
        + "[buckets.direct.upload_policy]\nrequire_type_match = true\n"
        + bucket_table(env, "typed", "typed/")
        + "[buckets.typed.upload_policy]\nrequire_type_match = true\n"
        + bucket_table(env, QUARANTINE, "quarantine/")
        + bucket_table(env, "raw", "shared/")
        + bucket_table(env, "lenient", "shared/")
        + scan.format("lenient", dead)
        + "on_unavailable = 'store'\n"
        + bucket_table(env, "rescanned", "shared/")
        + scan.format("rescanned", clamd)
    )


@contextmanager
def direct_gateway(
    request: pytest.FixtureRequest, store: str, clamd: ClamdServer, tmp_path: Path
) -> Iterator[RunningGateway]:
    """A gateway with config_text's buckets on store (tests/drivers.py)."""
    config = tmp_path / "buckets.toml"
    config.write_text(config_text(backend_env(request, store), clamd.tcp_address))
    env = {
        "GATEWAY_CONFIG": str(config),
        "STORAGE_URL_SECRET": SECRET,
        # The tests sweep when they choose to.
        "GATEWAY_PENDING_SWEEP_INTERVAL": "0",
    }
    with run_gateway(env, tmp_path) as gateway:
        yield gateway


@pytest.fixture(params=["s3-ceph", "s3-moto"])
def running(
    request: pytest.FixtureRequest, clamd: ClamdServer, tmp_path: Path
) -> Iterator[RunningGateway]:
    with direct_gateway(request, request.param, clamd, tmp_path) as gateway:
        yield gateway


def upload(signed: SignedUrl, data: bytes, content_type: str) -> None:
    """Send data with the URL as a browser or a service would: PUT with the
    URL's headers, or POST with its form fields and the file last."""
    if signed.method == "PUT":
        headers = {**signed.headers, "Content-Type": content_type}
        response = httpx.put(signed.url, content=data, headers=headers, timeout=120)
    else:
        files = {"file": ("upload", data, content_type)}
        response = httpx.post(signed.url, data=signed.form_fields, files=files, timeout=120)
    assert response.status_code in (200, 204), response.text


def sign(client: Client, key: str, method: str, content_type: str) -> SignedUrl:
    signed = client.sign_url(key, method=method, content_type=content_type, expires_in=300)
    assert signed.pending_upload.startswith(STAGING + "direct/")
    assert signed.pending_upload.endswith("/" + key)
    return signed


def pending(running: RunningGateway, bucket: str = "direct") -> list[str]:
    """The pending objects, asked of the driver (the gateway hides them)."""
    return pending_keys(running, bucket)


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_a_clean_direct_upload_is_visible_only_once_finalized(
    running: RunningGateway, client: Client, method: str
) -> None:
    key = f"clean-{method}.pdf"
    data = BY_NAME["pdf"].data + os.urandom(2 * MIB)
    signed = sign(client, key, method, "application/pdf")
    upload(signed, data, "application/pdf")
    assert pending(running) == [signed.pending_upload]
    assert_not_visible(client, "direct", key)
    info = client.finalize_upload(signed.pending_upload)
    assert (info.key, info.size) == (key, len(data))
    stored = client.head(key)
    assert stored.metadata["scan"] == "clean"
    assert stored.metadata["scan-scanner"].startswith("ClamAV ")
    assert stored.content_type == "application/pdf"
    assert client.get_bytes(key) == data
    assert pending(running) == []
    # A retried finalize answers the object it made.
    assert client.finalize_upload(signed.pending_upload).generation == info.generation


@pytest.mark.parametrize(
    ("method", "where"), [("PUT", "start"), ("PUT", "middle"), ("POST", "end")]
)
def test_eicar_uploaded_directly_is_quarantined_never_visible(
    running: RunningGateway, client: Client, method: str, where: str
) -> None:
    key = f"eicar-{where}.bin"
    data = with_eicar(BIG, where)
    signed = sign(client, key, method, "application/octet-stream")
    upload(signed, data, "application/octet-stream")
    with pytest.raises(MalwareDetected) as caught:
        client.finalize_upload(signed.pending_upload)
    assert caught.value.signature == EICAR_BODY_SIGNATURE
    assert caught.value.metadata["quarantine_key"] == f"direct/{key}"
    assert_not_visible(client, "direct", key)
    assert_quarantined(client, "direct", key, data)
    assert pending(running) == []
    with pytest.raises(NotFound):
        client.finalize_upload(signed.pending_upload)


def test_a_falsely_typed_direct_upload_is_refused_at_finalize(
    running: RunningGateway, client: Client
) -> None:
    signed = sign(client, "photo.png", "PUT", "image/png")
    upload(signed, BY_NAME["elf"].data, "image/png")
    with pytest.raises(StorageError) as caught:
        client.finalize_upload(signed.pending_upload)
    assert caught.value.reason == "TYPE_MISMATCH"
    assert_not_visible(client, "direct", "photo.png")
    assert pending(running) == []


def test_a_bucket_with_only_an_upload_policy_hides_its_direct_uploads(
    running: RunningGateway, client: Client
) -> None:
    pdf = BY_NAME["pdf"]
    signed = client.sign_url("doc.pdf", bucket="typed", method="PUT", content_type=pdf.declared)
    assert signed.pending_upload.startswith(STAGING + "direct/")
    upload(signed, pdf.data, pdf.declared)
    with pytest.raises(StorageError) as caught:
        client.head(signed.pending_upload, bucket="typed")
    assert caught.value.reason == "INVALID_KEY"
    assert [info.key for info in client.list(bucket="typed")] == []
    assert pending(running, "typed") == [signed.pending_upload]
    info = client.finalize_upload(signed.pending_upload, bucket="typed")
    assert info.key == "doc.pdf"
    metadata = client.head("doc.pdf", bucket="typed").metadata
    assert "scan" not in metadata  # not a scanning bucket
    assert client.get_bytes("doc.pdf", bucket="typed") == pdf.data
    png = BY_NAME["png"]
    false = client.sign_url("fake.pdf", bucket="typed", method="POST", content_type=pdf.declared)
    upload(false, png.data, pdf.declared)
    with pytest.raises(StorageError) as caught:
        client.finalize_upload(false.pending_upload, bucket="typed")
    assert caught.value.reason == "TYPE_MISMATCH"
    assert [info.key for info in client.list(bucket="typed")] == ["doc.pdf"]
    assert pending(running, "typed") == []


def test_finalize_honours_its_preconditions(running: RunningGateway, client: Client) -> None:
    client.put_bytes("taken.txt", b"first", content_type="text/plain")
    signed = sign(client, "taken.txt", "PUT", "text/plain")
    upload(signed, b"second", "text/plain")
    with pytest.raises(PreconditionFailed):
        client.finalize_upload(signed.pending_upload, if_none_match="*")
    assert client.get_bytes("taken.txt") == b"first"
    assert pending(running) == []


def test_a_forged_or_foreign_pending_name_is_refused(client: Client) -> None:
    with pytest.raises(StorageError) as caught:
        client.finalize_upload("photo.png")
    assert caught.value.reason == "INVALID_ARGUMENT"
    with pytest.raises(NotFound):
        client.finalize_upload(STAGING + "direct/" + "0" * 32 + "/never.txt")


def test_the_sweep_finalizes_what_nobody_finalized(running: RunningGateway, client: Client) -> None:
    clean = sign(client, "swept.txt", "PUT", "text/plain")
    upload(clean, b"nobody finalized me\n", "text/plain")
    infected = sign(client, "swept-bad.txt", "POST", "text/plain")
    upload(infected, b"text then " + EICAR, "text/plain")
    buckets = running.gateway.buckets.unguarded()
    # Within the grace period: left alone.
    early = running.run(sweep_pending(buckets, grace_s=600, max_age_s=86400))
    assert early["direct"].finalized == 0
    assert_not_visible(client, "direct", "swept.txt")
    later = time.time() + 3600
    swept = running.run(sweep_pending(buckets, grace_s=600, max_age_s=86400, now=later))
    counts = swept["direct"]
    assert (counts.finalized, counts.refused, counts.left) == (1, 1, 0)
    assert client.get_bytes("swept.txt") == b"nobody finalized me\n"
    assert client.head("swept.txt").metadata["scan"] == "clean"
    assert_not_visible(client, "direct", "swept-bad.txt")
    assert_quarantined(client, "direct", "swept-bad.txt", b"text then " + EICAR)
    assert pending(running) == []
    # The uploading service's own finalize, late, still answers the object.
    assert client.finalize_upload(clean.pending_upload).key == "swept.txt"


def test_the_sweep_deletes_pending_objects_past_the_maximum_age(
    running: RunningGateway, client: Client
) -> None:
    signed = sign(client, "old.txt", "PUT", "text/plain")
    upload(signed, b"too late", "text/plain")
    buckets = running.gateway.buckets.unguarded()
    later = time.time() + 10 * 86400
    swept = running.run(sweep_pending(buckets, grace_s=600, max_age_s=86400, now=later))
    assert (swept["direct"].expired, swept["direct"].finalized) == (1, 0), swept
    assert pending(running) == []
    assert_not_visible(client, "direct", "old.txt")


def test_an_upload_over_the_gateway_s_size_limit_is_refused(
    running: RunningGateway, client: Client
) -> None:
    # A presigned PUT cannot bound its body: the limit is checked when it is finalized.
    signed = sign(client, "large.txt", "PUT", "text/plain")
    upload(signed, b"sixteen bytes!!\n", "text/plain")
    buckets = running.gateway.buckets.unguarded()
    later = time.time() + 3600
    swept = running.run(sweep_pending(buckets, 600, 86400, now=later, max_size=8))
    assert (swept["direct"].refused, swept["direct"].finalized) == (1, 0)
    assert_not_visible(client, "direct", "large.txt")
    assert pending(running) == []


def test_a_rescan_quarantines_new_finds_and_marks_skipped_objects_clean(
    running: RunningGateway, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # Stored while the scanner was down (scan=skipped), and planted past the scanner.
    unscanned = os.urandom(MIB)
    client.put_bytes("docs/unscanned.bin", unscanned, bucket="lenient")
    assert client.head("docs/unscanned.bin", bucket="lenient").metadata["scan"] == "skipped"
    planted = with_eicar(4 * MIB, "middle")
    client.put_bytes("docs/planted.bin", planted, bucket="raw")
    client.put_bytes("other/outside.bin", EICAR, bucket="raw")
    report = client.scan_objects("docs/", bucket="rescanned", page_size=1)
    assert (report.scanned, report.clean, report.marked_clean, report.changed) == (2, 1, 1, 0)
    assert [(f.key, f.signature) for f in report.infected] == [
        ("docs/planted.bin", EICAR_BODY_SIGNATURE)
    ]
    assert report.infected[0].quarantine_key == "rescanned/docs/planted.bin"
    assert_not_visible(client, "rescanned", "docs/planted.bin")
    kept = client.head("rescanned/docs/planted.bin", bucket=QUARANTINE)
    assert kept.metadata["scan-signature"] == EICAR_BODY_SIGNATURE
    assert client.get_bytes("rescanned/docs/planted.bin", bucket=QUARANTINE) == planted
    marked = client.head("docs/unscanned.bin", bucket="rescanned")
    assert marked.metadata["scan"] == "clean"
    assert client.get_bytes("docs/unscanned.bin", bucket="rescanned") == unscanned
    # Outside the prefix: untouched. The CLI over the rest of the bucket finds it.
    assert client.get_bytes("other/outside.bin", bucket="raw") == EICAR
    assert cli.main(["--target", running.target, "scan", "rescanned", "other/"]) == 0
    out = capsys.readouterr().out
    assert "INFECTED other/outside.bin" in out
    assert "scanned 1, clean 0" in out
    assert_not_visible(client, "raw", "other/outside.bin")


def test_a_rescan_needs_a_scanning_bucket(client: Client) -> None:
    with pytest.raises(StorageError) as caught:
        client.scan_objects(bucket="raw")
    assert caught.value.reason == "UNSUPPORTED_OPTION"


def test_the_cli_signs_a_direct_upload_and_finalizes_it(
    running: RunningGateway, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ["--target", running.target]
    signing = [*target, "sign", "cli.txt", "--method", "PUT", "--content-type", "text/plain"]
    assert cli.main(signing) == 0
    printed = capsys.readouterr()
    hint = [line for line in printed.err.splitlines() if "storagegw finalize" in line]
    assert len(hint) == 1
    pending_upload = shlex.split(hint[0].split(": ", 1)[1])[-1]
    assert pending_upload.startswith(STAGING + "direct/")
    sent = httpx.put(
        printed.out.strip(), content=b"via the CLI\n", headers={"Content-Type": "text/plain"}
    )
    assert sent.status_code == 200, sent.text
    assert cli.main([*target, "finalize", pending_upload]) == 0
    shown = capsys.readouterr().out
    assert "key: cli.txt" in shown
    assert "metadata.scan: clean" in shown
    assert client.get_bytes("cli.txt") == b"via the CLI\n"


@pytest.fixture
def gcs_running(
    request: pytest.FixtureRequest, clamd: ClamdServer, tmp_path: Path
) -> Iterator[RunningGateway]:
    with direct_gateway(request, "gcs", clamd, tmp_path) as gateway:
        yield gateway


def test_direct_uploads_to_gcs_are_finalized(gcs_running: RunningGateway) -> None:
    with Client(gcs_running.target, timeout=120) as client:
        clean = sign(client, "gcs/clean.txt", "PUT", "text/plain")
        upload(clean, b"clean through GCS\n", "text/plain")
        assert_not_visible(client, "direct", "gcs/clean.txt")
        client.finalize_upload(clean.pending_upload)
        assert client.head("gcs/clean.txt").metadata["scan"] == "clean"
        assert client.get_bytes("gcs/clean.txt") == b"clean through GCS\n"
        data = with_eicar(4 * MIB, "end")
        infected = sign(client, "gcs/bad.bin", "POST", "application/octet-stream")
        # fake-gcs-server routes form uploads at "/<bucket>" only
        # (tests/backends/test_gcs_emulator_gaps.py).
        posted = httpx.post(
            infected.url.rstrip("/"),
            data=infected.form_fields,
            files={"file": ("bad.bin", data, "application/octet-stream")},
            timeout=120,
        )
        assert posted.status_code in (200, 201, 204), posted.text
        with pytest.raises(MalwareDetected):
            client.finalize_upload(infected.pending_upload)
        assert_not_visible(client, "direct", "gcs/bad.bin")
        assert_quarantined(client, "direct", "gcs/bad.bin", data)
        assert pending(gcs_running) == []
