"""The peers `make bench` compares the gateway with (bench/peer_servers.py) keep
working: each is started by the bench's own code as a real process and moves an
object over real sockets with the bench's own clients; and the peers section runs
end to end at a tiny size, every path in every cell."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import httpx
import pytest

from bench import peer_clients, peer_servers, procs
from bench.options import parse_args
from bench.peer_report import STORAGEGW, STORAGEGW_ONE_STREAM
from bench.peer_servers import Peer
from bench.peers import PeersSection

pytestmark = pytest.mark.timeout(120)

OBJECT = random.Random(14).randbytes(3 * 65536 + 123)  # more than one 64 KiB read, not a multiple


def _needs_rclone(name: str) -> None:
    if name.startswith("rclone") and peer_servers.rclone_missing():
        pytest.skip("rclone not installed; run scripts/install-test-servers.sh (make test does)")


def _peer(name: str, processes: procs.Processes, root: Path) -> Peer:
    _needs_rclone(name)
    peer = peer_servers.start(name, processes, root, root.parent, {})
    peer_servers.wait_ready(peer)
    return peer


@pytest.mark.parametrize("name", sorted(peer_servers.UPLOADS))
def test_peer_stores_an_upload_and_serves_it_back(
    name: str, processes: procs.Processes, tmp_path: Path
) -> None:
    peer = _peer(name, processes, tmp_path / "store")
    source, copy = tmp_path / "source", tmp_path / "copy"
    source.write_bytes(OBJECT)
    client = peer_clients.HttpBig(peer)
    try:
        client.put("object-1", source)
        client.download("object-1", copy)
    finally:
        client.close()
    assert copy.read_bytes() == OBJECT
    assert (peer.root / "object-1").read_bytes() == OBJECT  # on disk, under its key
    assert not list(tmp_path.glob("copy.part"))  # the download's temporary file is gone


def test_rclone_http_serves_a_file_of_its_directory(
    processes: procs.Processes, tmp_path: Path
) -> None:
    root = tmp_path / "served"
    root.mkdir()
    (root / "object-1").write_bytes(OBJECT)
    peer = _peer("rclone-http", processes, root)
    client = peer_clients.HttpBig(peer)
    try:
        client.download("object-1", tmp_path / "copy")
        with pytest.raises(httpx.HTTPStatusError) as missing:
            client.download("no-such-object", tmp_path / "other")
    finally:
        client.close()
    assert (tmp_path / "copy").read_bytes() == OBJECT
    assert missing.value.response.status_code == 404


def test_fastapi_peer_refuses_a_key_outside_its_directory(
    processes: procs.Processes, tmp_path: Path
) -> None:
    peer = _peer("fastapi", processes, tmp_path / "store")
    refused = httpx.put(peer.base_url + "..%2Foutside", content=b"x")
    missing = httpx.get(peer.url("no-such-object"))
    assert (refused.status_code, refused.json()) == (
        400,
        {"detail": "key '../outside' is outside the store"},
    )
    assert not (tmp_path / "outside").exists()
    assert missing.status_code == 404


@pytest.mark.parametrize("name", sorted(peer_servers.UPLOADS))
def test_small_objects_round_trip_at_concurrency(
    name: str, processes: procs.Processes, tmp_path: Path
) -> None:
    """A small round through the bench's aiohttp client: Puts land as files,
    Gets of them succeed (a wrong size would raise)."""
    peer = _peer(name, processes, tmp_path / "store")
    payload = b"p" * 4096

    def cpu() -> tuple[float, float]:
        return 0.0, 0.0

    put = peer_clients.SmallCell("put", 4, 0.2, lambda n: f"small-{n}", lambda n: f"warm-{n}")
    stored = peer_clients.small_round(peer, "", payload, put, cpu)
    assert stored.ops > 0
    assert (peer.root / "small-0").read_bytes() == payload
    get = peer_clients.SmallCell("get", 4, 0.2, lambda n: f"small-{n % stored.ops}", put.key)
    assert peer_clients.small_round(peer, "", payload, get, cpu).ops > 0


def test_peers_section_measures_every_path(processes: procs.Processes, tmp_path: Path) -> None:
    _needs_rclone("rclone")
    args = parse_args(
        ["--only", "peers", "--size", "256KiB", "--peer-runs", "2", "--peer-seconds", "0.4"]
    )
    section = PeersSection(args, processes, tmp_path, [])
    section.run()
    assert section.failed == []
    cells = {(row.workload, row.path) for row in section.rows}
    uploads = {STORAGEGW, "fastapi", "rclone-webdav"}
    assert cells == {
        *(("put 256 KiB", path) for path in uploads),
        *(("get 256 KiB", path) for path in {*uploads, "rclone-http", STORAGEGW_ONE_STREAM}),
        *(("put 4 KiB c=16", path) for path in uploads),
        *(("get 4 KiB c=16", path) for path in uploads),
    }
    assert all(row.rate > 0 and row.runs == 2 for row in section.rows)
    table = section.render()
    assert "| put 256 KiB | rclone serve webdav (httpx) |" in table
    # The servers are stopped at the end of the section.
    assert all(process.poll() is not None for process in processes.started)
    stored = hashlib.sha256((tmp_path / "peers" / "fastapi" / "peers-big").read_bytes())
    source = next((tmp_path / "peers" / "source").glob("big-*"))
    assert stored.digest() == hashlib.sha256(source.read_bytes()).digest()
