"""The CDNs' cache-invalidation APIs (CdnPurger, gateway/core/cdn.py):

- CloudFront CreateInvalidation: POST {endpoint}/2020-05-31/distribution/{id}/invalidation
  with an InvalidationBatch (Paths: Quantity, Items; CallerReference), signed
  with AWS Signature Version 4 (service "cloudfront", region "us-east-1");
  201 Created answers an Invalidation.
- Bunny purge: POST {endpoint}/purge?url={CDN URL}&async=true with the
  account's API key in the AccessKey header; one URL a request.

A purge that fails returns what the CDN said (its HTTP status and error
code), never a credential."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import aiohttp

from gateway.cdn.secret import Secret
from gateway.cdn.urls import cdn_path, cdn_url

CLOUDFRONT_ENDPOINT = "https://cloudfront.amazonaws.com"
BUNNY_ENDPOINT = "https://api.bunny.net"
CLOUDFRONT_API = "2020-05-31"
XML_NS = f"http://cloudfront.amazonaws.com/doc/{CLOUDFRONT_API}/"
_TIMEOUT = aiohttp.ClientTimeout(total=30)
_ERROR_CODE = re.compile(r"<Code>([A-Za-z0-9.]{1,64})</Code>")


def invalidation_batch(paths: Sequence[str], caller_reference: str) -> bytes:
    """The CreateInvalidation request body."""
    items = "".join(f"<Path>{escape(path)}</Path>" for path in paths)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<InvalidationBatch xmlns="{XML_NS}">'
        f"<Paths><Quantity>{len(paths)}</Quantity><Items>{items}</Items></Paths>"
        f"<CallerReference>{escape(caller_reference)}</CallerReference>"
        "</InvalidationBatch>"
    ).encode()


class _Http:
    """An aiohttp session made on first use (on the loop that uses it)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _send(
    http: _Http, api: str, url: str, body: bytes, headers: dict[str, str], ok: tuple[int, ...]
) -> str | None:
    """POST body to url; None when answered with a status in ok, else why not."""
    try:
        async with http.session().post(url, data=body, headers=headers) as response:
            if response.status in ok:
                return None
            text = await response.text(errors="replace")
    except (TimeoutError, aiohttp.ClientError) as error:
        return f"{api} cannot be reached: {type(error).__name__}"
    code = _ERROR_CODE.search(text)
    detail = f" ({code.group(1)})" if code else ""
    return f"{api} answered HTTP {response.status}{detail}"


class CloudFrontInvalidator:
    """Invalidates a distribution's paths with CreateInvalidation."""

    # One invalidation may name up to 3,000 paths in progress at once.
    max_batch = 1000

    def __init__(
        self,
        base_url: str,
        distribution_id: str,
        access_key_id: str,
        secret_access_key: Secret,
        session_token: Secret | None = None,
        endpoint: str = CLOUDFRONT_ENDPOINT,
    ) -> None:
        self.base_url = base_url
        self.distribution_id = distribution_id
        self.endpoint = endpoint.rstrip("/")
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._session_token = session_token
        self._http = _Http()

    def __repr__(self) -> str:
        return f"CloudFrontInvalidator(distribution_id={self.distribution_id!r})"

    async def purge(self, keys: Sequence[str]) -> str | None:
        # botocore is imported here, not at the top: reading the settings
        # must not load it (a gateway loads S3's libraries only if it uses them).
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        paths = [cdn_path(self.base_url, key) for key in keys]
        body = invalidation_batch(paths, str(uuid.uuid4()))
        url = f"{self.endpoint}/{CLOUDFRONT_API}/distribution/{self.distribution_id}/invalidation"
        request = AWSRequest("POST", url, data=body, headers={"Content-Type": "application/xml"})
        credentials = Credentials(
            self._access_key_id,
            self._secret_access_key.reveal(),
            None if self._session_token is None else self._session_token.reveal(),
        )
        SigV4Auth(credentials, "cloudfront", "us-east-1").add_auth(request)
        headers = {name: str(value) for name, value in request.headers.items()}
        return await _send(self._http, "CloudFront", url, body, headers, (201,))

    async def close(self) -> None:
        await self._http.close()


class BunnyPurger:
    """Purges a pull zone's URLs with Bunny's purge API, one URL a request."""

    max_batch = 1

    def __init__(self, base_url: str, api_key: Secret, endpoint: str = BUNNY_ENDPOINT) -> None:
        self.base_url = base_url
        self.endpoint = endpoint.rstrip("/")
        self._api_key = api_key
        self._http = _Http()

    def __repr__(self) -> str:
        return f"BunnyPurger(base_url={self.base_url!r})"

    async def purge(self, keys: Sequence[str]) -> str | None:
        failure = None
        for key in keys:
            query = urlencode({"url": cdn_url(self.base_url, key), "async": "true"})
            headers = {"AccessKey": self._api_key.reveal(), "Accept": "application/json"}
            url = f"{self.endpoint}/purge?{query}"
            failure = await _send(self._http, "Bunny", url, b"", headers, (200, 204)) or failure
        return failure

    async def close(self) -> None:
        await self._http.close()
