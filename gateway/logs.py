"""Log set-up: JSON lines when stderr is not a terminal, readable text when it is."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Fields the access interceptor attaches to each record.
_FIELDS = ("rpc_method", "bucket", "key", "bytes", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
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
                f"{fields['rpc_method']} {where} {fields['bytes']}B {fields['status']} "
                f"{fields['duration_ms']}ms"
            )
        else:
            text = record.getMessage()
        line = f"{stamp} {record.levelname[0]} {text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(log_format: str = "auto", level: str = "INFO") -> None:
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
