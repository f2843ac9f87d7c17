"""Log lines as JSON objects, one a line, for the service and every uvicorn worker process.

A message that is itself a JSON object (the request log, database outages) is merged into the
line, so ``request_id``, ``status`` and ``path`` are fields a log shipper can index.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any


class JsonLogFormatter(logging.Formatter):
    """``{"ts", "level", "logger", ...fields or "message", "exception"?}`` per record."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line for ``record``."""
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        fields = None
        if message.startswith("{"):
            try:
                fields = json.loads(message)
            except ValueError:
                fields = None
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            entry["message"] = message
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(json_lines: bool) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the service, given to uvicorn for each worker."""
    formatter = ({"()": "api.log_format.JsonLogFormatter"} if json_lines else
                 {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"})
    handler = {"class": "logging.StreamHandler", "formatter": "service",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"service": formatter},
        "handlers": {"service": handler},
        "root": {"handlers": ["service"], "level": "INFO"},
        "loggers": {name: {"handlers": ["service"], "level": "INFO", "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
