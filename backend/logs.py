"""Structured logs: one JSON object a line, each stamped with the request id.

Log records carry ids, never names, phone numbers, message bodies or notes (privacy.md). Pass
context as `extra={...}` with id-like values; exceptions are rendered as their type and stack,
without their message, because driver messages can quote row data.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback

from flask import g, has_request_context

#: LogRecord attributes that are not user-supplied `extra` fields.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id") if has_request_context() else None
        return True


class JsonFormatter(logging.Formatter):
    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc_type, _exc, tb = record.exc_info
            entry["exc_type"] = exc_type.__name__
            entry["stack"] = "".join(traceback.format_tb(tb))
        return json.dumps(entry, default=str)



def configure(level: str = "INFO") -> None:
    """Send every log line to stderr as JSON (idempotent: safe to call per app)."""
    root = logging.getLogger()
    if not any(getattr(h, "_bridgeline", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RequestIdFilter())
        handler._bridgeline = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # The twilio library logs request bodies (phone numbers, message text) at INFO.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # The development server logs whole request lines, query strings (names, MRNs) included.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
