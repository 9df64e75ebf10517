"""Local stand-ins for the CDNs' invalidation APIs, on a real socket in a
thread of their own (aiohttp): each checks a request's shape and
authentication as the real API would, answers as it does, and hands each
request it accepted (or failed on purpose) to the test through a queue.

- CloudFrontApi: CreateInvalidation (POST /2020-05-31/distribution/{id}/invalidation),
  its AWS SigV4 signature recomputed with botocore's SigV4Auth from the
  known test credentials, the InvalidationBatch XML checked; 201 with an
  Invalidation.
- BunnyApi: POST /purge?url=...&async=true with the AccessKey header."""

from __future__ import annotations

import asyncio
import queue
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY_ID = "AKIDCDNTEST7Q2W4E6R8"
SECRET_ACCESS_KEY = "cdn-test-secret-9Z8Y7X6W5V4U3T2S1R"
DISTRIBUTION_ID = "E2QWRUHAPOMQZL"
BUNNY_API_KEY = "bunny-api-key-5f0c1a9e-3d7b-4e2a"
NS = "{http://cloudfront.amazonaws.com/doc/2020-05-31/}"
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/us-east-1/cloudfront/"
    r"aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


@dataclass
class Received:
    """One request the stand-in took: what it named, and how it answered."""

    status: int
    # CloudFront: the invalidation's paths; Bunny: the purged URL.
    paths: list[str] = field(default_factory=list)
    caller_reference: str = ""


class _StandIn:
    def __init__(self) -> None:
        self.received: queue.Queue[Received] = queue.Queue()
        # Statuses to answer the next accepted requests with, instead of success.
        self.failures: list[int] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def take(self, timeout: float = 30) -> Received:
        """The next request the stand-in took (waits for it)."""
        return self.received.get(timeout=timeout)

    def paths_until(self, wanted: set[str], timeout: float = 30) -> list[Received]:
        """The requests taken until they named every path of wanted."""
        taken = []
        seen: set[str] = set()
        while not wanted <= seen:
            request = self.take(timeout)
            taken.append(request)
            seen.update(request.paths)
        return taken

    def _answer_failure(self) -> int | None:
        return self.failures.pop(0) if self.failures else None

    async def _start(self) -> None:
        app = web.Application()
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    @contextmanager
    def running(self) -> Iterator[_StandIn]:
        thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        try:
            yield self
        finally:
            assert self._runner is not None
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(10)
            self._loop.close()


class CloudFrontApi(_StandIn):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(
                "/2020-05-31/distribution/{distribution}/invalidation", self._create_invalidation
            )
        ]

    async def _create_invalidation(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.match_info["distribution"] != DISTRIBUTION_ID:
            return _error(404, "NoSuchDistribution")
        if not _signature_holds(request, body):
            return _error(403, "SignatureDoesNotMatch")
        batch = ET.fromstring(body)  # noqa: S314 - the gateway under test sent it
        if batch.tag != f"{NS}InvalidationBatch":
            return _error(400, "MalformedXML")
        paths = [item.text or "" for item in batch.iterfind(f"{NS}Paths/{NS}Items/{NS}Path")]
        quantity = batch.findtext(f"{NS}Paths/{NS}Quantity")
        reference = batch.findtext(f"{NS}CallerReference") or ""
        if quantity != str(len(paths)) or not paths or not reference:
            return _error(400, "InvalidArgument")
        if not all(path.startswith("/") for path in paths):
            return _error(400, "InvalidArgument")
        failure = self._answer_failure()
        self.received.put(Received(failure or 201, paths, reference))
        if failure is not None:
            return _error(failure, "ServiceUnavailable")
        # CloudFront's answer: the Invalidation, with the batch as sent.
        batch_xml = body.decode().split("?>", 1)[-1]
        return web.Response(
            status=201,
            content_type="text/xml",
            headers={"Location": f"{self.endpoint}{request.path}/I2J0I21PCUYOIK"},
            text=(
                f'<?xml version="1.0"?><Invalidation xmlns="{NS[1:-1]}">'
                "<Id>I2J0I21PCUYOIK</Id><Status>InProgress</Status>"
                f"<CreateTime>2026-12-07T10:00:00Z</CreateTime>{batch_xml}</Invalidation>"
            ),
        )


def _signature_holds(request: web.Request, body: bytes) -> bool:
    """The request's SigV4 signature, recomputed with botocore from the test
    credentials over the headers it says it signed."""
    match = _AUTH.match(request.headers.get("Authorization", ""))
    amz_date = request.headers.get("X-Amz-Date", "")
    if match is None or match["akid"] != ACCESS_KEY_ID or not amz_date.startswith(match["date"]):
        return False
    signed = match["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return False
    headers = {name: request.headers[name] for name in signed if name in request.headers}
    url = f"http://{request.headers['Host']}{request.path_qs}"
    again = AWSRequest(request.method, url, data=body, headers=headers)
    again.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "cloudfront", "us-east-1")
    canonical = auth.canonical_request(again)
    expected = auth.signature(auth.string_to_sign(again, canonical), again)
    return bool(expected == match["sig"])


def _error(status: int, code: str) -> web.Response:
    return web.Response(
        status=status,
        content_type="text/xml",
        text=f"<ErrorResponse><Error><Code>{code}</Code></Error></ErrorResponse>",
    )


class BunnyApi(_StandIn):
    def routes(self) -> list[web.RouteDef]:
        return [web.post("/purge", self._purge)]

    async def _purge(self, request: web.Request) -> web.Response:
        if request.headers.get("AccessKey") != BUNNY_API_KEY:
            return web.json_response({"Message": "Unauthorized"}, status=401)
        url = request.query.get("url", "")
        if not url.startswith("https://") or request.query.get("async") != "true":
            return web.json_response({"Message": "bad url"}, status=400)
        failure = self._answer_failure()
        self.received.put(Received(failure or 200, [url]))
        return web.Response(status=failure or 200)
