from datetime import UTC, datetime, timedelta, timezone

import pytest

from phonewagon.times import parse_time, to_epoch_ms, utc_day


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return to_epoch_ms(datetime(year, month, day, hour, minute, tzinfo=UTC))


def test_a_date_is_utc_midnight() -> None:
    """`2026-01-31` is the first millisecond of that day in UTC."""
    assert parse_time("2026-01-31") == 1_769_817_600_000 == ms(2026, 1, 31)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T09:30:00Z", ms(2026, 1, 31, 9, 30)),
        ("2026-01-31T09:30:00+00:00", ms(2026, 1, 31, 9, 30)),
        ("2026-01-31T10:30:00+01:00", ms(2026, 1, 31, 9, 30)),
        ("2026-01-31 04:30:00-05:00", ms(2026, 1, 31, 9, 30)),
        ("2026-01-31T09:30:00.123Z", ms(2026, 1, 31, 9, 30) + 123),
        ("2026-01-31T09:30:00.123999Z", ms(2026, 1, 31, 9, 30) + 123),
    ],
)
def test_an_iso_datetime_with_offset_or_z_is_that_moment(text: str, expected: int) -> None:
    """Offsets are applied, Z is UTC, sub-millisecond digits are dropped (never rounded up)."""
    assert parse_time(text) == expected


def test_a_naive_datetime_is_refused_asking_for_an_offset() -> None:
    """A datetime without an offset means different moments in different places: refused."""
    with pytest.raises(ValueError, match=r"no timezone: add an offset \(\+01:00\) or Z"):
        parse_time("2026-01-31T09:30:00")


@pytest.mark.parametrize("text", ["0", "1769817600000", " 1769817600000 ", "253402300799999"])
def test_digits_are_epoch_milliseconds(text: str) -> None:
    assert parse_time(text) == int(text)


def test_epoch_seconds_are_refused_with_the_milliseconds_to_use() -> None:
    """Ten digits are epoch seconds: taken as ms they would mean January 1970."""
    with pytest.raises(ValueError, match=r"epoch seconds.*1769817600000"):
        parse_time("1769817600")


def test_a_date_without_dashes_is_refused_as_ambiguous() -> None:
    with pytest.raises(ValueError, match="ambiguous: write the date as 2026-01-31"):
        parse_time("20260131")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-02-30", "not a calendar date"),
        ("yesterday", "is not a time: write a date"),
        ("-5", "is not a time"),
        ("", "is not a time"),
        ("1769817600000000", "after the year 9999"),
    ],
)
def test_what_is_not_a_time_is_refused_with_a_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_time(text)


def test_utc_day_changes_at_utc_midnight() -> None:
    midnight = ms(2026, 11, 27)
    assert utc_day(midnight - 1) == "2026-11-26"
    assert utc_day(midnight) == "2026-11-27"


def test_to_epoch_ms_is_exact_far_from_the_epoch() -> None:
    """Integer arithmetic: no float rounding on times with microseconds."""
    moment = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=-1)))
    assert to_epoch_ms(moment) == 253_402_304_399_999
