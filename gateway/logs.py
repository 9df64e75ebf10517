"""Log set-up: JSON lines when stderr is not a terminal, readable text when it is.

Secrets never reach the log, whatever the level: the HTTP and cloud client
libraries, which print request headers (Authorization, signatures) at DEBUG,
are held at INFO, and every record passes a filter that masks credentials
and signatures in case one slips through anyway.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime

# Libraries that log requests with their credentials at DEBUG.
QUIET_LOGGERS = (
    "botocore",
    "aiobotocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "requests",
    "google.auth",
    "google.cloud",
    "google.resumable_media",
    "google_auth_httplib2",
    "aiohttp.client",
)
_REDACTED = "[REDACTED]"
# (what precedes a secret, the secret): header values and query parameters.
_SECRETS = re.compile(
    r"""(?ix)
    (
        (?:authorization|x-amz-security-token|x-goog-signature
           |x-amz-signature|x-sgw-signature|signature|credential|x-amz-credential
           |x-goog-credential|awsaccesskeyid|access_token|private_key|secret)
        ['"]?\s*[:=]\s*(?:b?['"])?
    )
    ([^'"&\s,}]+(?:\ [^'"&\s,}]+)*)
    """
)


def redact(text: str) -> str:
    """text with credentials and signatures replaced by [REDACTED]."""
    return _SECRETS.sub(lambda match: match.group(1) + _REDACTED, text)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message (formatted once, here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# Fields the access interceptor attaches to each record.
_FIELDS = ("rpc_method", "bucket", "key", "bytes", "status", "duration_ms")
# Fields of an audit line (gateway/access/audit.py), besides bucket and key.
_AUDIT_FIELDS = ("principal", "proof", "method", "action", "outcome", "reason", "peer", "trace_id")
_EXTRA_FIELDS = _FIELDS + _AUDIT_FIELDS


# (trace id, span id) of the current span, or ("", ""): set by the gateway
# when it traces (gateway/telemetry/tracing.py), so that JSON lines carry them.
trace_ids: Callable[[], tuple[str, str]] | None = None

# In one of several worker processes (GATEWAY_WORKERS): {"worker": index,
# "pid": its process id}, on every line, so that a line says which process
# served the call. Empty otherwise: a single process's lines are unchanged.
process_fields: dict[str, int] = {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **process_fields,
        }
        extras = record.__dict__  # where logging puts a call's extra fields
        for name in _EXTRA_FIELDS:
            if name in extras:
                entry[name] = extras[name]
        if trace_ids is not None:
            trace_id, span_id = trace_ids()
            if trace_id:
                entry["trace_id"], entry["span_id"] = trace_id, span_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        fields = record.__dict__
        if "rpc_method" in fields:
            bucket, key = fields["bucket"] or "-", fields["key"]
            where = f"{bucket}/{key}" if key else bucket
            text = (
                f"{fields['rpc_method']} {fields.get('principal', '-')} {where} "
                f"{fields['bytes']}B {fields['status']} {fields['duration_ms']}ms"
            )
        else:
            text = record.getMessage()
        if process_fields:
            text = f"[worker {process_fields['worker']} pid {process_fields['pid']}] {text}"
        line = f"{stamp} {record.levelname[0]} {text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def skip_unused_record_fields() -> None:
    """Stop logging from filling in what neither format writes: the caller's
    file, line and function (a walk up the stack), the thread, the process
    id and name. The access line is written once per RPC, and these made
    up most of its cost (see the logging HOWTO's "Optimization")."""
    logging._srcfile = None  # the documented switch for the caller lookup
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def setup(log_format: str = "auto", level: str = "INFO") -> None:
    skip_unused_record_fields()
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
