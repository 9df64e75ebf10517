"""The clamd client against a real clamd (tests/clamd_server.py): verdicts,
its version, the stream limit, a clamd killed mid-scan, nothing listening."""

from __future__ import annotations

import os

import pytest

from gateway.domain.errors import GatewayError, Reason
from gateway.scanning.clamd import Clamd, ClamdAddress, ClamdTimeouts
from tests.clamd_server import EICAR, EICAR_BODY_SIGNATURE, ClamdServer
from tests.servers import free_port

MIB = 1024 * 1024
CHUNK = 256 * 1024


def chunks_of(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def scan(clamd: Clamd, data: bytes) -> str | None:
    session = await clamd.open()
    for chunk in chunks_of(data):
        await session.feed(chunk)
    return (await session.verdict()).signature


@pytest.fixture(params=["tcp", "unix"])
def client(request: pytest.FixtureRequest, clamd: ClamdServer) -> Clamd:
    address = clamd.tcp_address if request.param == "tcp" else clamd.unix_address
    return Clamd(ClamdAddress.parse(address))


async def test_clean_bytes_are_clean(client: Clamd) -> None:
    assert await scan(client, os.urandom(3 * MIB)) is None


async def test_eicar_whole_is_found(client: Clamd) -> None:
    assert await scan(client, EICAR) == EICAR_BODY_SIGNATURE


@pytest.mark.parametrize("where", ["start", "middle", "end"])
async def test_eicar_inside_a_large_stream_is_found(client: Clamd, where: str) -> None:
    filler = os.urandom(8 * MIB)
    at = {"start": 0, "middle": len(filler) // 2 + 12345, "end": len(filler)}[where]
    data = filler[:at] + EICAR + filler[at:]
    assert await scan(client, data) == EICAR_BODY_SIGNATURE


async def test_version_names_clamav(client: Clamd) -> None:
    assert (await client.version()).startswith("ClamAV ")


async def test_a_stream_over_the_limit_is_unavailable_not_a_verdict() -> None:
    with ClamdServer(stream_limit_mb=1) as small:
        client = Clamd(ClamdAddress.parse(small.tcp_address))
        with pytest.raises(GatewayError) as caught:
            await scan(client, os.urandom(4 * MIB))
    assert caught.value.reason is Reason.SCANNER_UNAVAILABLE
    assert caught.value.metadata["scanner"] == f"clamd {small.tcp_address}"
    # clamd says so before closing, but its reply may be lost with the
    # connection's reset.
    detail = caught.value.metadata["detail"]
    assert "size limit" in detail or "connection lost" in detail


async def test_clamd_killed_mid_scan_is_unavailable(doomed_clamd: ClamdServer) -> None:
    client = Clamd(ClamdAddress.parse(doomed_clamd.tcp_address))
    session = await client.open()
    await session.feed(os.urandom(MIB))
    doomed_clamd.kill()

    async def go_on() -> None:
        for chunk in chunks_of(os.urandom(8 * MIB)):
            await session.feed(chunk)
        await session.verdict()

    with pytest.raises(GatewayError) as caught:
        await go_on()
    assert caught.value.reason is Reason.SCANNER_UNAVAILABLE


async def test_nothing_listening_is_unavailable(tmp_path: os.PathLike[str]) -> None:
    for address in (f"tcp://127.0.0.1:{free_port()}", f"unix://{tmp_path}/none.sock"):
        client = Clamd(ClamdAddress.parse(address), ClamdTimeouts(connect=5))
        with pytest.raises(GatewayError) as caught:
            await client.open()
        assert caught.value.reason is Reason.SCANNER_UNAVAILABLE
        assert "cannot connect" in caught.value.metadata["detail"]


@pytest.mark.parametrize(
    "text", ["127.0.0.1:3310", "tcp://127.0.0.1", "unix://", "http://h:1", "tcp://h:1/x"]
)
def test_addresses_other_than_tcp_or_unix_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="tcp://"):
        ClamdAddress.parse(text)


def test_addresses_parse() -> None:
    assert ClamdAddress.parse("tcp://127.0.0.1:3310") == ClamdAddress("127.0.0.1", 3310)
    assert ClamdAddress.parse("unix:///run/clamd.sock") == ClamdAddress(path="/run/clamd.sock")
    assert str(ClamdAddress.parse("unix:///run/clamd.sock")) == "unix:///run/clamd.sock"
