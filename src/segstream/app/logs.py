"""Structured logs: one JSON object per line on stderr."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping

from segstream.schemas.jsontext import dumps_text

__all__ = ["configure_logging"]


class JsonFormatter(logging.Formatter):
    """Formats a record as a JSON line: time, level, logger, message (and the traceback), plus
    `fields` given once (a `--processes` child's index)."""

    def __init__(self, fields: Mapping[str, object] | None = None) -> None:
        super().__init__()
        self._fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self._fields,
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return dumps_text(entry)


def configure_logging(level: str, fields: Mapping[str, object] | None = None) -> None:
    """Send every log record to stderr as JSON at `level` (with `fields` on each line)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(fields))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka is chatty at INFO about every group event; keep its warnings.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
