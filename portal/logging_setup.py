"""Logging of a served Portal: one handler on stderr writing text or JSON lines (``PORTAL_LOG_FORMAT``), for
Portal's own loggers (``configure_logging``, called by ``create_app``) and uvicorn's (``uvicorn_log_config``,
passed to ``uvicorn.run`` by ``portal serve``).

uvicorn's access log stays off: it prints the query string, which can carry a pre-authenticated
``customer_session_token`` or a download signature. ``portal.request_log`` writes the request lines instead.
Extra fields travel on the record as ``record.fields`` (a dict): keys of the JSON object, ``k=v`` pairs in text
(except those named in ``record.in_message``, which the text message already shows).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal

from portal.fields import escape_controls

LogFormat = Literal["text", "json"]

# Marks the handler configure_logging installs, so calling it again (every create_app) replaces it.
_HANDLER_MARK = "_portal_handler"


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """``2026-11-25T12:00:00.000Z INFO portal.request GET /acme/portal 200 3.1ms org=acme``"""

    def format(self, record: logging.LogRecord) -> str:
        # Message and fields escape control characters and line breaks (``\r``, ``\n``, ``\u2028``): text that
        # came from a client (a decoded URL path, a name) cannot end this line and forge another (issue 17.8).
        # Only a traceback, appended below, spans lines.
        line = f"{_timestamp(record)} {record.levelname} {record.name} {escape_controls(record.getMessage())}"
        shown = set(getattr(record, "in_message", ()))  # fields the message already spells out
        extras = " ".join(
            f"{key}={escape_controls(str(value))}"
            for key, value in _fields(record).items()
            if value is not None and key not in shown
        )
        if extras:
            line = f"{line} {extras}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


_JSON_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the record's fields, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # json escapes C0 controls; U+0085/U+2028/U+2029 are line breaks to some readers (str.splitlines), so they
        # are escaped too and one record stays one line whatever a client put in a path.
        return json.dumps(entry, default=str, ensure_ascii=False).translate(_JSON_LINE_BREAKS)


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(log_format: LogFormat) -> None:
    """Give the ``portal`` logger exactly one stderr handler in ``log_format``, level INFO.

    It still propagates (to nothing in a served process; to pytest's capture in tests)."""
    logger = logging.getLogger("portal")
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(formatter_for(log_format))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    # A served Portal logs a line per request. Skip what no formatter here prints: the caller's file and line (a
    # stack walk per record), thread and process names and the pid (the logging HOWTO's "Optimization" table).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def uvicorn_log_config(log_format: LogFormat) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn's loggers in the same format; the access log is silenced."""
    formatter = "portal.logging_setup.JsonFormatter" if log_format == "json" else "portal.logging_setup.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"portal": {"()": formatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "portal", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            # Never: it logs query strings. Request lines come from portal.request_log.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }
