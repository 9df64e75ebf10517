"""A small recording HTTP proxy in front of fake-gcs-server.

The emulator ignores some of what the gateway asks of GCS (preconditions on
resumable uploads, rewrites, deletes and reads). Tests put this proxy between
the gateway and the emulator to show the gateway sends the right requests,
and may alter a request on its way (to corrupt bytes in transit).

With emulate_sessions it also answers for upload sessions as GCS does where
the emulator does not (see tests/backends/test_gcs_uploads.py's xfails): a status
query (`PUT`, empty, `Content-Range: bytes */*`) gets 308 and the Range GCS
acknowledged (the emulator finalizes the upload instead), and a session
cancelled by DELETE is gone afterwards (404; the emulator keeps it open).

It runs its own event loop in a thread, so both threaded gateways and
gateway processes can use it. Upload-session URLs in Location headers are
rewritten to point back at the proxy, so every chunk passes through it too.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import google_crc32c
from aiohttp import ClientSession, web

from tests.servers import free_port


@dataclass
class Recorded:
    method: str
    path: str  # percent-decoded
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0
    size: int = 0  # body bytes


# Alters a request body: (recorded request, body) -> body to forward.
BodyFilter = Callable[[Recorded, bytes], bytes]


@dataclass
class _Session:
    acked: int = 0  # from the emulator's last 308 Range
    finished: tuple[int, bytes] | None = None  # its final (status, body)
    cancelled: bool = False


_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.requests: list[Recorded] = []
        self.body_filter: BodyFilter | None = None
        # Check x-goog-hash on a resumable upload's last chunk as GCS does
        # (fake-gcs-server does not): a mismatch is answered with GCS's 400,
        # and the emulator never sees the request.
        self.check_upload_hash = False
        self._upload_crcs: dict[str, Any] = {}
        self.emulate_sessions = False
        self._sessions: dict[str, _Session] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RecordingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    async def _start(self) -> None:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = ClientSession(auto_decompress=False)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        record = Recorded(
            request.method,
            unquote(request.path),
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
        )
        self.requests.append(record)
        body = await request.read()
        record.size = len(body)
        if self.body_filter is not None:
            body = self.body_filter(record, body)
        session = self._sessions.setdefault(record.query.get("upload_id", ""), _Session())
        if self.emulate_sessions and "upload_id" in record.query:
            answer = self._session_answer(record, body, session)
            if answer is not None:
                record.status = answer.status
                return answer
        if self.check_upload_hash and (refusal := self._hash_refusal(record, body)) is not None:
            record.status = refusal.status
            return refusal
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        assert self._session is not None
        async with self._session.request(
            request.method,
            f"{self.upstream}{request.rel_url}",
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as upstream:
            content = await upstream.read()
            record.status = upstream.status
            if record.method == "PUT" and "upload_id" in record.query:
                if upstream.status == 308:
                    last = upstream.headers.get("Range", "bytes=0--1").rsplit("-", 1)[1]
                    session.acked = int(last) + 1
                elif upstream.status in (200, 201):
                    session.finished = (upstream.status, content)
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            if "Location" in out:
                out["Location"] = out["Location"].replace(self.upstream, self.endpoint)
            return web.Response(status=upstream.status, body=content, headers=out)

    @staticmethod
    def _session_answer(record: Recorded, body: bytes, session: _Session) -> web.Response | None:
        if session.cancelled:
            error = {"code": 404, "message": "No such upload", "errors": [{"reason": "notFound"}]}
            return web.json_response({"error": error}, status=404)
        if record.method == "DELETE":
            session.cancelled = True
            return web.Response(status=499)
        status_query = record.headers.get("content-range") == "bytes */*" and not body
        if record.method == "PUT" and status_query:
            if session.finished is not None:
                status, content = session.finished
                return web.Response(status=status, body=content, content_type="application/json")
            headers = {"Range": f"bytes=0-{session.acked - 1}"} if session.acked else {}
            return web.Response(status=308, headers=headers)
        return None

    def session_bytes(self) -> int:
        """Body bytes of every upload-session PUT received so far."""
        return sum(r.size for r in self.requests if r.method == "PUT" and "upload_id" in r.query)

    def _hash_refusal(self, record: Recorded, body: bytes) -> web.Response | None:
        session = record.query.get("upload_id")
        if record.method != "PUT" or session is None:
            return None
        crc = self._upload_crcs.setdefault(session, google_crc32c.Checksum())
        crc.update(body)
        sent = record.headers.get("x-goog-hash", "")
        if not sent.startswith("crc32c="):
            return None
        calculated = base64.b64encode(crc.digest()).decode()
        if sent == f"crc32c={calculated}":
            return None
        message = (
            f'Provided CRC32C "{sent.removeprefix("crc32c=")}" doesn\'t match calculated '
            f'CRC32C "{calculated}".'
        )
        error = {"code": 400, "message": message, "errors": [{"reason": "invalid"}]}
        return web.json_response({"error": error}, status=400)

    def matching(self, method: str, path_part: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    def stop(self) -> None:
        async def stop() -> None:
            if self._session is not None:
                await self._session.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> RecordingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
