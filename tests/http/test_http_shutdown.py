"""SIGTERM with signed-URL transfers in flight: the HTTP listener honours
GATEWAY_SHUTDOWN_GRACE as the gRPC one does, then cuts what is left, so the
process exits (cleanly) however its HTTP clients behave."""

from __future__ import annotations

import signal
from pathlib import Path

import grpc

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import gateway_process
from tests.http_raw import Reader, connect, head
from tests.rpc_calls import put
from tests.service.test_process import records

GRACE = 1.0
# A bound far past the grace; before the fix such a gateway took 60 s and
# more (aiohttp's own shutdown timeout, twice over).
EXIT_WAIT = 30


def test_sigterm_with_slow_download_and_wedged_upload_exits_after_the_grace(
    tmp_path: Path,
) -> None:
    with gateway_process(
        tmp_path,
        STORAGE_BACKEND="memory",
        GATEWAY_SHUTDOWN_GRACE=str(GRACE),
        # The wedged upload must stay wedged: only the grace may end it.
        GATEWAY_STREAM_IDLE_TIMEOUT="600",
    ) as gw:
        with grpc.insecure_channel(gw.target) as channel:
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            put(stub, "big", bytes(range(256)) * (64 * 1024))  # 16 MiB
            get_url = stub.SignUrl(pb.SignUrlRequest(key="big", method=pb.SIGNED_METHOD_GET)).url
            put_url = stub.SignUrl(pb.SignUrlRequest(key="wedged", method=pb.SIGNED_METHOD_PUT)).url

        # A download whose client reads its headers, then nothing.
        slow = connect(gw.http_port, receive_buffer=4096)
        slow.sendall(head("GET", get_url))
        assert Reader(slow).response(body=False).status == 200

        # An upload that sent part of its body and stopped.
        wedged = connect(gw.http_port)
        wedged.sendall(
            head(
                "PUT",
                put_url,
                {"Transfer-Encoding": "chunked", "Expect": "100-continue"},
            )
        )
        wedged_reader = Reader(wedged)
        assert wedged_reader.header_block().startswith(b"HTTP/1.1 100")  # handler in the body
        wedged.sendall(b"5\r\nhello\r\n")

        gw.process.send_signal(signal.SIGTERM)
        assert gw.process.wait(EXIT_WAIT) == 0

        # Both connections were cut.
        assert Reader(slow).closed_by_server()
        assert wedged_reader.closed_by_server()
        slow.close()
        wedged.close()
    messages = [r["message"] for r in records(gw)]
    assert any("cutting 2 connection(s) still busy" in m for m in messages), messages
    assert "stopped" in messages
    assert not [r for r in records(gw) if r["level"] in ("error", "critical")]
