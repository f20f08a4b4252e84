"""Phone numbers in E.164, the one spelling the deployment stores and compares."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "US"  # where a number written without its country code is read as from
MAX_INPUT_CHARS = 64


class InvalidNumber(ValueError):
    """A number that cannot be read as one; its message says why."""


def normalize_number(text: str) -> str:
    """`text` as E.164 (`(844) 555-0102` → `+18445550102`), or InvalidNumber saying why not."""
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidNumber(f"is longer than {MAX_INPUT_CHARS} characters, more than any number")
    try:
        parsed = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"{text!r} is not a phone number") from exc
    if parsed.extension:
        raise InvalidNumber(f"{text!r} has an extension, which a tracking number cannot")
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(f"{text!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
