"""The transport ceiling: a grpc.aio server moving raw bytes, nothing else.

Generic handlers with identity serializers (no protobuf, no checksums, no disk):

    /raw.Raw/Upload    stream of bytes -> count and discard; reply the count (8 bytes)
    /raw.Raw/Download  request: size (8 bytes) -> that many bytes in chunk-size
                       messages, all cut from one preallocated buffer
    /raw.Raw/PutSmall  unary: 2-byte key length, key, data -> kept in a dict
    /raw.Raw/GetSmall  unary-stream: key -> one message with the stored data

Run as `python -m bench.raw_server --listen HOST:PORT --chunk-size N
--options JSON` (the driver passes the gateway's own server options).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

SERVICE = "raw.Raw"
KEY_PREFIX = b"small/"


def encode_small_put(key: bytes, data: bytes) -> bytes:
    """The PutSmall request: 2-byte big-endian key length, the key, the data."""
    return len(key).to_bytes(2, "big") + key + data


class RawService:
    def __init__(self, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self.buffer = os.urandom(chunk_size)  # every Download message is cut from it
        self.store: dict[bytes, bytes] = {}

    async def upload(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        total = 0
        async for message in requests:
            total += len(message)
        return total.to_bytes(8, "big")

    async def download(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        remaining = int.from_bytes(request, "big")
        full = self.buffer
        while remaining >= self.chunk_size:
            remaining -= self.chunk_size
            yield full
        if remaining:
            yield full[:remaining]

    async def put_small(self, request: bytes, context: Any) -> bytes:
        length = int.from_bytes(request[:2], "big")
        self.store[KEY_PREFIX + request[2 : 2 + length]] = request[2 + length :]
        return b""

    async def get_small(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        data = self.store.get(KEY_PREFIX + request)
        if data is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such key")
        yield data


def handler(service: RawService) -> grpc.GenericRpcHandler:
    # No serializers: requests and responses travel as bytes, untouched.
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Upload": grpc.stream_unary_rpc_method_handler(service.upload),
            "Download": grpc.unary_stream_rpc_method_handler(service.download),
            "PutSmall": grpc.unary_unary_rpc_method_handler(service.put_small),
            "GetSmall": grpc.unary_stream_rpc_method_handler(service.get_small),
        },
    )


async def serve(listen: str, chunk_size: int, options: list[tuple[str, Any]]) -> None:
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers((handler(RawService(chunk_size)),))
    if server.add_insecure_port(listen) == 0:
        raise OSError(f"raw server: cannot listen on {listen}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_server")
    parser.add_argument("--listen", required=True, help="host:port")
    parser.add_argument("--chunk-size", type=int, default=1024 * 1024)
    parser.add_argument("--options", default="[]", help="server options as a JSON list of pairs")
    args = parser.parse_args(argv)
    options = [(str(name), value) for name, value in json.loads(args.options)]
    try:
        asyncio.run(serve(args.listen, args.chunk_size, options))
    except OSError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
