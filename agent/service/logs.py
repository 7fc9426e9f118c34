"""JSON logs with the call sid and masked phone numbers."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time

from telephony.numbers import mask_numbers_in

_CALL_SID = re.compile(r"\bCA[0-9a-f]{32}\b")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, str | float] = {
            "ts": round(time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_numbers_in(record.getMessage()),
        }
        call_sid = getattr(record, "call_sid", None)
        if not call_sid:  # most call logs name the sid in the text: make it a field
            found = _CALL_SID.search(str(out["msg"]))
            call_sid = found.group(0) if found else None
        if call_sid:
            out["call_sid"] = call_sid
        if record.exc_info:
            out["exc"] = mask_numbers_in(self.formatException(record.exc_info))
        return json.dumps(out)


def setup_logging(level: str | None = None) -> None:
    level = level or os.environ.get("LOG_LEVEL", "INFO")
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("LOG_FORMAT", "json") == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
