"""Log formats: one JSON object per line, or text. Request bodies and request objects are never written, and
anything in a message or traceback that looks like encoded bytes (base64, a bytes literal) is withheld."""

import json
import logging
from datetime import UTC, datetime

from config.error_reports import redact

# Attributes every LogRecord has; anything else a caller passed in `extra` is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}
# Django attaches the request (with its body) to error records; only its method and path are kept.
_DROPPED = {"request"}


class JsonFormatter(logging.Formatter):
    """Formats a record as a single-line JSON object with time, level, logger, request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", "-"),
        }
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "path"):
            entry["method"] = getattr(request, "method", "")
            entry["path"] = request.path
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _DROPPED and not key.startswith("_"):
                if isinstance(value, int | float | bool | None):
                    entry[key] = value
                else:
                    entry[key] = redact(value if isinstance(value, str) else repr(value))
        if record.exc_info:
            entry["exc_info"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The plain format, with message and traceback passed through `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
