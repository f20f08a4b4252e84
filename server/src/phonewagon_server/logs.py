"""Log lines for operators: one JSON object per line on stderr (or plain text), never a secret.

Every line passes through `redact`, whoever logged it (our code, uvicorn, psycopg, redis). It masks

- a client secret, a web session id, a set-password token (`pwss_`, `pwst_`), an
  `Authorization` value and the password of a URL, whole: `pwsk_***`,
  `Basic ***`, `postgresql://user:***@host`;
- a phone number, but for its last two digits: `***67`, or `+***67` if it was written with a `+`.
  A phone number is
  - a `+` and 7 to 15 digits, grouped or not by spaces, dots, dashes or brackets
    (`+15551234567`, `+1 (555) 123-4567`);
  - without a `+`, 10 to 15 digits in a row (`15551234567`), or 10 digits or more in three groups
    or more of up to 4 digits, the last of 4 (`555-123-4567`, `1.555.123.4567`,
    `(555) 123-4567`), standing alone: digits that touch a letter, a digit, `_` or `%`, or are
    joined to one by a dot or a dash, are part of something else (an id: `pwid_...`, `CA...`
    sids, hex request ids, UUIDs; an escape, a version, a decimal) and kept.

  Kept too: the value of `start_time=`, `end_time=` and `updated_since=` as received (epoch
  milliseconds: an operator needs them, and they are not personal data), and whatever has fewer
  digits or other groups: dates, times, IPv4 addresses, durations, small ids;
- all of these percent-encoded, at any depth (`%2B`, `pwsk%5F`, `Basic%20`, `%252B`): a word
  (what lies between spaces, quotes, backslashes, `&` and `?`) with a `%` is decoded, up to 8
  layers, and checked like any text, but for time values (decoded, `x=%26start_time%3D...` would
  pass for one). A word that holds something to mask is shown decoded and masked, re-encoded
  where the line or the word's meaning needs it (`phone=%2B***67`, `x=a%26b=***67`); the others
  as received. A word still encoded after 8 layers is masked whole.

A line logged while a request is served carries that request's id (`REQUEST_ID`).
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote, unquote

import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

MAX_PERCENT_LAYERS = 8
MIN_BARE_PHONE_DIGITS = 10
TIME_PARAMETERS = ("start_time", "end_time", "updated_since")

_SECRETS = re.compile(
    # A client secret, a web session id or a set-password token, wherever it turns up.
    r"(?P<keep>pw(?:sk|ss|st)_)[A-Za-z0-9_\-]+"
    r"|(?P<scheme>\b(?:basic|bearer)[\s+]+)[A-Za-z0-9+/=._\-]{16,}"  # `+`: a space, in a query
    r"|(?P<user>://[^:/?#\s\"]*:)[^/?#\s\"]+@",  # to the last `@`: a decoded password may hold one
    re.IGNORECASE,
)
_GROUP_SEPARATOR = r"(?:[ .\-]|\)[ .\-]?|[ .\-]?\()"
_PHONE = re.compile(
    r"(?=[+(\d])"  # how every number starts: the engine skips ahead to those places
    rf"(?:\+ ?\(?\d(?:{_GROUP_SEPARATOR}?\d){{6,14}}(?!\d)"
    r"|(?<![\w%])(?<![^\W_][.\-])"  # neither in a word nor joined to one by a dot or a dash
    r"(?:\d{10,15}|(?:\(\d{1,4}\)[ .\-]?|\d{1,4}[ .\-]){2,5}\d{4})"
    r"(?!\w|[.\-][^\W_]))"
)
_TIME_PREFIXES = tuple(f"{name}=" for name in TIME_PARAMETERS)
_LONGEST_TIME_PREFIX = max(map(len, _TIME_PREFIXES))
_WORD_DELIMITER = r"[\s\"\\&?]"  # JSON's escapes start with a backslash
_NEXT_WORD_DELIMITER = re.compile(_WORD_DELIMITER)
_UP_TO_LAST_WORD_DELIMITER = re.compile(f"(?s:.*){_WORD_DELIMITER}")
_SHOWN_DECODED = "!$'()*,/:;=@[]"  # with letters, digits and `_.-~`; the rest is re-encoded

# Wherever a pattern above matches, the `_clues` of the text hold one of these.
_SECRET_CLUES = ("pwsk_", "pwss_", "pwst_", "basic", "bearer", "@")
_PLUS_CLUES = ("+0", "+-")  # a `+`, then a digit, a space or a bracket
_LAST_GROUP_CLUE = "-0000"
_LAST_TWO_GROUPS_CLUES = tuple(f"-{'0' * digits}{_LAST_GROUP_CLUE}" for digits in range(1, 5))
_RUN_CLUE = "0" * MIN_BARE_PHONE_DIGITS
_ALL_CLUES = " ".join((*_SECRET_CLUES, *_PLUS_CLUES, *_LAST_TWO_GROUPS_CLUES, _RUN_CLUE))
_FOLD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ123456789 .()", b"abcdefghijklmnopqrstuvwxyz000000000----"
)
# A time value as clients send it (epoch ms: 13 digits) holds one run of 10 digits.
_USUAL_TIME_VALUES = tuple(f"{prefix}{'0' * 13}" for prefix in _TIME_PREFIXES)

_QUIET_MODULES = ("psycopg", "psycopg_pool", "sqlite3", "redis")

# No line shows the thread, the process or the file and line that logged it, so a record need
# not look them up: the logging HOWTO's "Optimization" switches (`_srcfile` is the one it names).
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False
logging._srcfile = None


def redact(text: str) -> str:
    """`text` with its secrets and phone numbers masked, as the module's docstring says."""
    if "%" in text:
        text = _mask_percent_encoded_words(text)
    return _masked(text, keep_time_values=True)


def _masked(text: str, *, keep_time_values: bool) -> str:
    clues = _clues(text)
    if any(clue in clues for clue in _SECRET_CLUES):
        text = _SECRETS.sub(_mask_secret, text)
        clues = _clues(text)  # a mask may have cut `start_time=` off its value
    if _may_hold_phone_number(clues, keep_time_values=keep_time_values):
        mask = _mask_phone_unless_time if keep_time_values else _mask_phone
        text = _PHONE.sub(mask, text)
    return text


def _clues(text: str) -> str:
    """`text` lowercased, each digit a `0` and each separator of digit groups a `-`.

    Quick to make and to search: most lines hold no clue, and skip the regular expressions.
    """
    if not text.isascii():  # rare; and `\d` matches the digits of every script
        return _ALL_CLUES
    return text.encode().translate(_FOLD).decode()


def _may_hold_phone_number(clues: str, *, keep_time_values: bool) -> bool:
    if "+" in clues and any(clue in clues for clue in _PLUS_CLUES):
        return True
    if _LAST_GROUP_CLUE in clues:
        groups = clues.replace("--", "-")  # a bracket and a space: `(555) 123-4567`
        if any(clue in groups for clue in _LAST_TWO_GROUPS_CLUES):
            return True
    runs = clues.count(_RUN_CLUE)
    if runs and keep_time_values:
        runs -= sum(map(clues.count, _USUAL_TIME_VALUES))
    return runs > 0


def _mask_secret(match: re.Match[str]) -> str:
    if match["keep"]:
        return f"{match['keep']}***"
    if match["scheme"]:
        return f"{match['scheme']}***"
    return f"{match['user']}***@"


def _mask_phone(match: re.Match[str]) -> str:
    number = match[0]
    digits = [character for character in number if character.isdigit()]
    plus = "+" if number[0] == "+" else ""
    if not plus and len(digits) < MIN_BARE_PHONE_DIGITS:
        return number  # digits in groups, but too few: a date, a version
    return f"{plus}***{''.join(digits[-2:])}"


def _mask_phone_unless_time(match: re.Match[str]) -> str:
    before = match.string[max(match.start() - _LONGEST_TIME_PREFIX, 0) : match.start()].lower()
    if before.endswith(_TIME_PREFIXES) and match[0].isdigit():
        return match[0]
    return _mask_phone(match)


def _mask_percent_encoded_words(text: str) -> str:
    """`text` with each word that holds a `%` as `_mask_percent_encoded` shows it."""
    shown: list[str] = []
    done = 0
    escape = text.find("%")
    while escape != -1:
        before = _UP_TO_LAST_WORD_DELIMITER.match(text, done, escape)
        after = _NEXT_WORD_DELIMITER.search(text, escape)
        start, end = before.end() if before else done, after.start() if after else len(text)
        shown += (text[done:start], _mask_percent_encoded(text[start:end]))
        done, escape = end, text.find("%", end)
    shown.append(text[done:])
    return "".join(shown)


def _mask_percent_encoded(word: str) -> str:
    """`word` as received if, decoded, it holds nothing to mask; else decoded and masked."""
    decoded = _percent_decoded(word)
    if decoded is None:
        return "***"
    if decoded == word:
        return word  # no escape: checked as received, with the rest of the line
    masked = _masked(decoded, keep_time_values=False)
    if masked == decoded:
        return word
    return quote(masked, safe=_SHOWN_DECODED, errors="surrogateescape")


def _percent_decoded(word: str) -> str | None:
    """`word` decoded until nothing changes, or None if it takes more than `MAX_PERCENT_LAYERS`."""
    for _ in range(MAX_PERCENT_LAYERS + 1):
        decoded = unquote(word, errors="surrogateescape")
        if decoded == word:
            return word
        word = decoded
    return None


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
