"""What a PutObject's answer tells of the object it stored, so that a small
write needs no HeadObject read-back (one request per Put, not two).

The ETag comes in the answer and the rest is the write's own: size, content
type, metadata, storage class, its stamped generation and the checksums the
gateway computed. S3 keeps metadata as sent except that it lower-cases keys;
anything S3 might rewrite (a value with non-ASCII characters, surrounding or
repeated spaces, an empty value, a key that is not a plain HTTP token) makes
the writer read the object back instead. Times: S3's Last-Modified has whole
seconds; the answer's Last-Modified header (moto sends one) or else its Date
header (the store's clock when it answered, normally the same second as
Last-Modified for a small object, sometimes the next: seen on Ceph RGW),
floored to the second.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from gateway.domain.objects import WriteOptions

_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_PLAIN_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")


def stored_as_sent(options: WriteOptions) -> bool:
    """Whether S3 stores this write's metadata exactly as sent (keys
    lower-cased), so a HEAD would tell nothing new."""
    return all(
        _TOKEN.fullmatch(key) and _PLAIN_VALUE.fullmatch(value)
        for key, value in options.metadata.items()
    )


def response_time_ns(response: Mapping[str, Any]) -> int:
    """The stored object's time, whole seconds, from the answer's headers
    (the local clock if it has neither)."""
    headers: Mapping[str, str] = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    for name in ("last-modified", "date"):
        try:
            seconds = int(parsedate_to_datetime(headers[name]).timestamp())
        except (KeyError, TypeError, ValueError, IndexError):
            continue
        return seconds * 1_000_000_000
    return time.time_ns() // 1_000_000_000 * 1_000_000_000
