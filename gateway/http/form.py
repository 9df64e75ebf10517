"""Signed-URL POST: an HTML-form upload (multipart/form-data), as browsers
send to S3 and GCS.

The form carries optional text fields, then the object as the field named
"file"; fields after it are ignored (as S3 does). What the URL binds (the key,
a Content-Type, a size range) is in its signed query string, so the only text
fields accepted are Content-Type, which must equal the bound type when there
is one, and names starting with "x-ignore-". Any other field is refused
rather than silently dropped: a form that expects, say, metadata to be stored
would otherwise succeed and lose it.

Every read of the body must bring bytes within the idle timeout
(STREAM_IDLE_TIMEOUT otherwise).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import BodyPartReader, web

from gateway.core.signing import CONTENT_TYPE_FIELD, SignatureError
from gateway.domain.errors import ErrorTemplate, Reason, invalid_argument
from gateway.http.limits import within_idle

T = TypeVar("T")

FILE_FIELD = "file"
IGNORED_PREFIX = "x-ignore-"
MAX_FIELDS = 32
MAX_FIELD_BYTES = 8 * 1024


@dataclass(slots=True)
class FormUpload:
    """The form's fields before the file, and the file part itself."""

    fields: dict[str, str]
    file: BodyPartReader
    idle_timeout: float

    @property
    def content_type(self) -> str | None:
        """The Content-Type field, else the file part's own header."""
        for name, value in self.fields.items():
            if name.lower() == CONTENT_TYPE_FIELD.lower():
                return value
        return self.file.headers.get("Content-Type")

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        while data := await _form_read(self.file.read_chunk(chunk_size), self.idle_timeout):
            yield data
        if not self.file.at_eof():
            # The body ended without the boundary that closes the file: a cut
            # upload, raised inside the store so that nothing is kept.
            raise invalid_argument(f'the form ended inside its "{FILE_FIELD}" field')


async def _form_read(step: Awaitable[T], idle_timeout: float) -> T:
    """One read of the form, within the idle timeout; a body that is not
    well-formed multipart is INVALID_ARGUMENT (aiohttp raises ValueError or
    AssertionError)."""
    try:
        return await within_idle(step, idle_timeout)
    except (ValueError, AssertionError):
        raise invalid_argument("malformed multipart/form-data body") from None


async def read_form(
    request: web.Request, bound_content_type: str, idle_timeout: float
) -> FormUpload:
    """Read the fields up to the "file" part; INVALID_ARGUMENT for a form
    that is not one, PERMISSION_DENIED for a field the URL does not allow."""
    if not request.content_type.startswith("multipart/form-data"):
        raise invalid_argument("a signed POST takes a multipart/form-data body")
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):
        raise invalid_argument("malformed multipart/form-data body") from None
    fields: dict[str, str] = {}
    while True:
        part = await _form_read(reader.next(), idle_timeout)
        if part is None:
            raise invalid_argument(f'the form has no "{FILE_FIELD}" field')
        if not isinstance(part, BodyPartReader):
            raise invalid_argument("nested multipart bodies are not accepted")
        name = part.name or ""
        if name == FILE_FIELD:
            upload = FormUpload(fields, part, idle_timeout)
            _check_fields(upload, bound_content_type)
            return upload
        if len(fields) == MAX_FIELDS:
            raise invalid_argument(f"more than {MAX_FIELDS} form fields")
        fields[name] = await _read_field(part, name, idle_timeout)


async def _read_field(part: BodyPartReader, name: str, idle_timeout: float) -> str:
    value = bytearray()
    while data := await _form_read(part.read_chunk(MAX_FIELD_BYTES), idle_timeout):
        value += data
        if len(value) > MAX_FIELD_BYTES:
            raise invalid_argument(f"form field {name!r} is longer than {MAX_FIELD_BYTES} bytes")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_argument(f"form field {name!r} is not UTF-8 text") from None


def _check_fields(upload: FormUpload, bound_content_type: str) -> None:
    for name, value in upload.fields.items():
        lowered = name.lower()
        if lowered.startswith(IGNORED_PREFIX):
            continue
        if lowered != CONTENT_TYPE_FIELD.lower():
            raise SignatureError(f"signed URL: form field {name!r} is not allowed")
        if bound_content_type and value != bound_content_type:
            raise SignatureError(
                "signed URL: Content-Type must be exactly the one the URL was signed with"
            )
    if bound_content_type and upload.content_type != bound_content_type:
        raise SignatureError(
            "signed URL: Content-Type must be exactly the one the URL was signed with"
        )


object_too_small = ErrorTemplate(
    Reason.OBJECT_TOO_SMALL, "object is {size} bytes, below the signed URL's minimum of {min_size}"
)


async def at_least(chunks: AsyncIterator[bytes], min_size: int) -> AsyncIterator[bytes]:
    """chunks, raising OBJECT_TOO_SMALL at their end if fewer than min_size
    bytes came: raised inside the store, the write is aborted, nothing kept."""
    received = 0
    async for data in chunks:
        received += len(data)
        yield data
    if received < min_size:
        raise object_too_small(min_size=min_size, size=received)
