"""What people type for a time, turned into epoch milliseconds, and epoch milliseconds back."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the server's upper bound

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_time(text: str) -> int:
    """Epoch ms from `2026-01-31` (UTC midnight), an ISO datetime with an offset or `Z`, or digits.

    Raises ValueError with a message meant for the person who typed `text`.
    """
    text = text.strip()
    if text.isdigit():
        return _parse_epoch_ms(text)
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a calendar date") from None
        return to_epoch_ms(datetime(day.year, day.month, day.day, tzinfo=UTC))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: write a date (2026-01-31), an ISO datetime with an offset "
            "(2026-01-31T09:30:00+01:00 or 2026-01-31T08:30:00Z) or epoch milliseconds"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(
            f"{text!r} has no timezone: add an offset (+01:00) or Z for UTC, "
            f"e.g. {text}Z, so it means the same moment everywhere"
        )
    return to_epoch_ms(moment)


def _parse_epoch_ms(text: str) -> int:
    value = int(text)
    # Two slips that would silently select calls from January 1970: a date without dashes and
    # epoch seconds. No call is that old, so refusing them costs nothing.
    if len(text) == 8 and _is_compact_date(text):
        raise ValueError(
            f"{text!r} is ambiguous: write the date as {text[:4]}-{text[4:6]}-{text[6:]}, "
            "or give epoch milliseconds (13 digits for recent times)"
        )
    if len(text) == 10:
        raise ValueError(
            f"{text!r} looks like epoch seconds: epoch milliseconds have 13 digits ({text}000)"
        )
    if value > MAX_EPOCH_MS:
        raise ValueError(f"{text!r} is after the year 9999 in epoch milliseconds")
    return value


def _is_compact_date(text: str) -> bool:
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


def to_epoch_ms(moment: datetime) -> int:
    """Exact milliseconds since the epoch of an aware datetime (no float rounding)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(epoch_ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=epoch_ms)


def utc_day(epoch_ms: int) -> str:
    """The UTC calendar day of an epoch-ms time, as `YYYY-MM-DD`."""
    return from_epoch_ms(epoch_ms).date().isoformat()
