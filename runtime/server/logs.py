"""Structured logs of ``kiln serve --log-format json``: one JSON object a line (``ts``,
``level``, ``logger``, ``message``, and ``exc`` for a failure), for kiln's loggers and
uvicorn's. Secrets never reach a log line: kiln logs no request body and no event data."""

from __future__ import annotations

import json
import logging
import sys
import time

from runtime.masking import mask

__all__ = ["JsonFormatter", "configure"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        if record.exc_info:
            line["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class MaskedFormatter(logging.Formatter):
    """Text lines, with secrets' values masked (runtime/masking.py)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def configure(format_: str) -> dict[str, object] | None:
    """Set up kiln's logging; returns uvicorn's ``log_config`` (``None``: uvicorn's own)."""
    handler = logging.StreamHandler(sys.stderr)
    if format_ == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(MaskedFormatter("%(levelname)s:     %(name)s: %(message)s"))
    kiln = logging.getLogger("kiln")
    kiln.handlers[:] = [handler]
    kiln.setLevel(logging.INFO)
    kiln.propagate = False
    if format_ != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "json",
                             "stream": "ext://sys.stderr"}},
        "loggers": {name: {"handlers": ["err"], "level": "INFO", "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }  # fmt: skip
