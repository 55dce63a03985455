"""JSON logs, one object per line, with personal data masked: a citizen ID (12 digits) keeps its last 4
digits, a phone number its last 3, wherever they appear in a message."""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

CITIZEN_ID = re.compile(r"(?<!\d)(\d{8})(\d{4})(?!\d)")
PHONE = re.compile(r"(?<!\d)(\+?84|0)(\d{5,8})(\d{3})(?!\d)")


def mask(text: str) -> str:
    text = CITIZEN_ID.sub(lambda m: "*" * 8 + m.group(2), text)
    return PHONE.sub(lambda m: m.group(1)[:1] + "*" * (len(m.group(1)) - 1 + len(m.group(2))) + m.group(3), text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"at": datetime.fromtimestamp(record.created, timezone.utc).isoformat(), "level": record.levelname,
                 "logger": record.name, "message": mask(record.getMessage())}
        for key in ("method", "path", "status", "duration_ms", "user_id", "client"):
            if hasattr(record, key):
                value = getattr(record, key)
                entry[key] = mask(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["error"] = mask(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = name != "uvicorn.access"    # our middleware logs requests
