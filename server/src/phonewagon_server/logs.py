"""Log lines for operators: one JSON object per line on stderr (or plain text), never a secret.

Every line passes through `redact`, whoever logged it (our code, uvicorn, psycopg, redis): client
secrets, `Authorization` values, passwords in URLs and E.164 phone numbers are masked there.
A line logged while a request is served carries that request's id (`REQUEST_ID`).
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from contextvars import ContextVar
from typing import Any

import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

_SECRETS = re.compile(
    r"(?P<keep>pwsk_)[A-Za-z0-9_\-]+"  # a client secret, wherever it turns up
    r"|(?P<scheme>\b(?:basic|bearer)\s+)[A-Za-z0-9+/=._\-]{16,}"  # an Authorization value
    r"|(?P<user>://[^:/@\s\"]+:)[^@\s\"]+@"  # the password of a URL
    r"|(?P<plus>\+|%2[Bb])\d{5,13}(?P<last>\d{2})(?!\d)",  # E.164: keep the last two digits
    re.IGNORECASE,
)
# Every pattern above needs one of these, lowercased; timestamps are written with `Z`, not `+00:00`.
_CLUES = ("pwsk_", "basic", "bearer", "@", "+", "%2b")
_QUIET_MODULES = ("psycopg", "psycopg_pool", "sqlite3", "redis")


def _mask(match: re.Match[str]) -> str:
    if match["keep"]:
        return f"{match['keep']}***"
    if match["scheme"]:
        return f"{match['scheme']}***"
    if match["user"]:
        return f"{match['user']}***@"
    return f"{match['plus']}***{match['last']}"


def redact(text: str) -> str:
    lowered = text.lower()
    if any(clue in lowered for clue in _CLUES):  # most lines have none: skip the regex
        return _SECRETS.sub(_mask, text)
    return text


def format_exception(exc: BaseException) -> str:
    """The traceback of `exc` and what caused it, newest first.

    Frames without their source lines, and database errors without their messages: either could
    quote SQL and the values bound to it.
    """
    parts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        quiet = kind.__module__.split(".")[0] in _QUIET_MODULES
        message = "(message withheld: it may quote SQL)" if quiet else str(current)
        frames = "".join(
            f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
            for frame in traceback.extract_tb(current.__traceback__)
        )
        parts.append(f"{frames}{kind.__module__}.{kind.__qualname__}: {message}")
        cause = current.__cause__
        current = cause if cause or current.__suppress_context__ else current.__context__
    return "\nwhich was caused by:\n".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and any `fields`."""

    _last_second = (0, "")

    def _second(self, seconds: int) -> str:
        """`2026-11-27T08:00:05`, worked out once a second: many lines share one."""
        if self._last_second[0] != seconds:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            self._last_second = (seconds, text)
        return self._last_second[1]

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": f"{self._second(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Read when the line is written, which is in the task or thread that logged it.
        if (request_id := REQUEST_ID.get()) is not None:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = format_exception(record.exc_info[1])
        return redact(orjson.dumps(entry, default=str).decode())


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id] message`, for people watching a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if (request_id := REQUEST_ID.get()) is not None:
            line = f"{line} [{request_id}]"
        return redact(line)

    def formatException(self, ei: Any) -> str:
        return format_exception(ei[1]) if ei[1] is not None else ""


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for this process and each uvicorn worker it starts."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "phonewagon_server": {"level": level.upper()},
            "uvicorn": {"level": level.upper()},
        },
    }
