"""A malware scanner's answer about one object (gateway.core.scanning), and
the errors of a scanned write: the scanner could not give a verdict, or
found something."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.errors import ErrorTemplate, Reason


@dataclass(frozen=True, slots=True)
class Verdict:
    """Clean, or the signature the scanner found."""

    signature: str | None = None

    @property
    def infected(self) -> bool:
        return self.signature is not None


CLEAN = Verdict()

# scanner names the scanner as configured (its address).
scanner_unavailable = ErrorTemplate(
    Reason.SCANNER_UNAVAILABLE,
    "malware scanner {scanner} unavailable: {detail}; nothing was stored",
)
malware_detected = ErrorTemplate(
    Reason.MALWARE_DETECTED,
    "malware found in {key!r} ({signature}); nothing was stored under the key",
    metadata=("key", "signature", "quarantine_bucket", "quarantine_key"),
)
# A retried stream of an upload whose object the scan refused (or could not
# scan, failing closed): the first stream was told why.
upload_refused_by_scan = ErrorTemplate(
    Reason.UPLOAD_NOT_FOUND,
    "the upload of {key!r} finished, but its scan refused it or could not be made; "
    "nothing was stored; start a new upload",
)
