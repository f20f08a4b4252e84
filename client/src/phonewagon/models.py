"""The API's records as frozen dataclasses: Company, Campaign, Call, and a Page of calls."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final, Self

from phonewagon.times import from_epoch_ms


@dataclass(frozen=True, slots=True)
class Company:
    id: int
    name: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(id=_integer(data, "id"), name=_text(data, "name"))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(id=_text(data, "id", required=True), name=_text(data, "name"))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Call:
    """One call, every documented field, in the API's (alphabetical) order.

    Unknown values are `""`, never None. `start_time` is epoch milliseconds; `duration` seconds.
    `updated_at` (epoch milliseconds) moves whenever what the API shows of the call changes (its
    status, duration, recording, campaign name), and never otherwise: the change feed's cursor.
    """

    account_id: int
    ad_position: str
    campaign_id: str
    campaign_name: str
    company_id: int
    contact_name: str
    device: str
    direction: str
    duration: int
    fbclid: str
    from_number: str
    gclid: str
    id: int
    is_first_time_caller: bool
    keyword: str
    landing_page: str
    match_type: str
    msclkid: str
    network: str
    recording_url: str
    referral_value: str
    sid: str
    start_time: int
    status: str
    to_number: str
    unbounce_page_id: str
    unbounce_variant_id: str
    unbounce_visitor_id: str
    updated_at: int
    user_source: str
    utm_campaign: str
    utm_content: str
    utm_medium: str
    utm_source: str
    utm_term: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """A call from the API's JSON: unknown keys are ignored, a missing text field is `""`."""
        values: dict[str, Any] = {}
        for name in CALL_FIELDS:
            if name == "updated_at" and name not in data:  # what servers before the feed lack
                raise ValueError("updated_at is missing: the server predates the change feed")
            if name in _CALL_INTEGERS:
                values[name] = _integer(data, name)
            elif name == "is_first_time_caller":
                values[name] = data.get(name) is True
            else:
                values[name] = _text(data, name)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The call as the API renders it, keys in `CALL_FIELDS` order."""
        return {name: getattr(self, name) for name in CALL_FIELDS}

    @property
    def started_at(self) -> datetime:
        """`start_time` as a timezone-aware UTC datetime."""
        return from_epoch_ms(self.start_time)


CALL_FIELDS: Final[tuple[str, ...]] = tuple(field.name for field in fields(Call))
_CALL_INTEGERS: Final = frozenset(
    {"account_id", "company_id", "duration", "id", "start_time", "updated_at"}
)


@dataclass(frozen=True, slots=True)
class Page:
    """One answer of `GET /calls`: its calls, and the link to the next page if more match."""

    calls: list[Call]
    next_url: str | None
    url: str


def calls_of(
    pages: Iterable[Page], on_page: Callable[[Page], None] | None = None
) -> Iterator[Call]:
    """The calls of `pages` one at a time, calling `on_page` with each page as it arrives."""
    for page in pages:
        if on_page is not None:
            on_page(page)
        yield from page.calls


def _integer(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdecimal():
        return int(value)
    raise ValueError(f"{name} should be an integer, not {value!r}")


def _text(data: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{name} should be a string, not {value!r}")
