"""Strict query parameters: unknown names, malformed numbers and conflicting repeats are refused."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request

from phonewagon_server.errors import InvalidParameters, ParameterError
from phonewagon_server.models import MAX_ID

Parser = Callable[[str], Any]
_DIGITS = re.compile(r"[0-9]+")


def parse_params(request: Request, parsers: Mapping[str, Parser]) -> dict[str, Any]:
    """Each known parameter parsed once; every problem found is reported together."""
    if not request.scope["query_string"]:
        return {}
    values: dict[str, str] = {}
    errors: list[ParameterError] = []
    for name, value in request.query_params.multi_items():
        if name not in parsers:
            errors.append(ParameterError(name, _unknown(name, parsers)))
        elif name in values and values[name] != value:
            errors.append(ParameterError(name, "is given more than once with different values"))
        values.setdefault(name, value)
    parsed: dict[str, Any] = {}
    for name, value in values.items():
        if name not in parsers or any(e.name == name for e in errors):
            continue
        try:
            parsed[name] = parsers[name](value)
        except ValueError as exc:
            errors.append(ParameterError(name, str(exc)))
    if errors:
        raise InvalidParameters(errors)
    return parsed


def _unknown(name: str, parsers: Mapping[str, Parser]) -> str:
    known = ", ".join(parsers) or "none"
    close = difflib.get_close_matches(name, parsers, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"is not a parameter of this endpoint; {hint}known parameters: {known}"


def integer_parser(*, minimum: int, maximum: int, unit: str = "", clamp: bool = False) -> Parser:
    """Plain decimal digits only: no sign, spaces, underscores or fractions.

    Above `maximum` is an error, or with `clamp` is read as `maximum`.
    """
    longest = len(str(maximum))

    def parse(value: str) -> int:
        described = f"an integer{f' ({unit})' if unit else ''}"
        if not _DIGITS.fullmatch(value):
            kind = "negative" if value.startswith("-") else f"{value!r}"
            raise ValueError(f"must be {described} of at least {minimum}, not {kind}")
        digits = value.lstrip("0") or "0"
        number = maximum + 1 if len(digits) > longest else int(digits)
        if number < minimum:
            raise ValueError(f"must be {described} of at least {minimum}")
        if number > maximum:
            if clamp:
                return maximum
            raise ValueError(f"must be {described} of at most {maximum}")
        return number

    return parse


def text_parser(*, max_length: int) -> Parser:
    def parse(value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value

    return parse


COMPANY_ID = integer_parser(minimum=0, maximum=MAX_ID)
